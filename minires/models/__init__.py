"""The ResNet family, PyTorch flavour: ImageNet models (torchvision's), and the paper's CIFAR nets with
plain twins. The Keras flavour is ``minires.keras``; ``minires.zoo.get_model`` builds either by name."""
from .blocks import BasicBlock, Bottleneck, ShortcutA, projection
from .cifar import (CifarResNet, plain20, plain32, plain44, plain56, plain110, resnet20, resnet32, resnet44,
                    resnet56, resnet110, resnet1202)
from .resnet import (ResNet, resnet18, resnet34, resnet50, resnet50_v1, resnet101, resnet152, resnext50_32x4d,
                     resnext101_32x8d, wide_resnet50_2)

MODELS = {f.__name__: f for f in (
    resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d, wide_resnet50_2,
    resnet50_v1, resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202,
    plain20, plain32, plain44, plain56, plain110)}


__all__ = ["BasicBlock", "Bottleneck", "ShortcutA", "projection", "ResNet", "CifarResNet", "MODELS", *MODELS]
