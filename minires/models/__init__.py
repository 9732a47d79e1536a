"""The ResNet family: ImageNet models (torchvision's), and the paper's CIFAR nets with plain twins."""
from .blocks import BasicBlock, Bottleneck, ShortcutA, projection
from .cifar import (CifarResNet, plain20, plain32, plain44, plain56, plain110, resnet20, resnet32, resnet44,
                    resnet56, resnet110, resnet1202)
from .keras import (KERAS_MODELS, KerasResNet, TFResNet, keras_resnet50, keras_resnet50v2, keras_resnet101,
                    keras_resnet101v2, keras_resnet152, keras_resnet152v2, tf_resnet34, tf_resnet50, tf_resnet101)
from .resnet import (ResNet, resnet18, resnet34, resnet50, resnet50_v1, resnet101, resnet152, resnext50_32x4d,
                     resnext101_32x8d, wide_resnet50_2)

MODELS = {f.__name__: f for f in (
    resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d, wide_resnet50_2,
    resnet50_v1, resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202,
    plain20, plain32, plain44, plain56, plain110)}


def get_model(name, **kwargs):
    """Build a model by name (``MODELS`` lists them, ``KERAS_MODELS`` the Keras-flavoured ones), e.g.
    ``get_model('resnet20', in_channels=1)``."""
    if name in KERAS_MODELS:
        return KERAS_MODELS[name](**kwargs)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)} "
                         f"(Keras-flavoured: {', '.join(KERAS_MODELS)})")
    return MODELS[name](**kwargs)


__all__ = ["BasicBlock", "Bottleneck", "ShortcutA", "projection", "ResNet", "CifarResNet", "MODELS", "get_model",
           "KERAS_MODELS", "KerasResNet", "TFResNet", *MODELS, *KERAS_MODELS]
