"""The ResNet family: ImageNet models (torchvision's), and the paper's CIFAR nets with plain twins."""
from .blocks import BasicBlock, Bottleneck, ShortcutA, projection
from .cifar import (CifarResNet, plain20, plain32, plain44, plain56, plain110, resnet20, resnet32, resnet44,
                    resnet56, resnet110, resnet1202)
from .resnet import (ResNet, resnet18, resnet34, resnet50, resnet50_v1, resnet101, resnet152, resnext50_32x4d,
                     resnext101_32x8d, wide_resnet50_2)

MODELS = {f.__name__: f for f in (
    resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d, wide_resnet50_2,
    resnet50_v1, resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202,
    plain20, plain32, plain44, plain56, plain110)}


def get_model(name, **kwargs):
    """Build a model by name (``MODELS`` lists them), e.g. ``get_model('resnet20', in_channels=1)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = ["BasicBlock", "Bottleneck", "ShortcutA", "projection", "ResNet", "CifarResNet", "MODELS", "get_model",
           *MODELS]
