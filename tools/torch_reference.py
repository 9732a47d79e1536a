"""PyTorch reference models: the oracle that minires is checked against.

This file needs torch (tools only; never imported by minires or by the tests). The ImageNet
ResNets follow torchvision/models/resnet.py exactly -- same modules, same attribute names, so
the same state_dict keys and shapes -- and the CIFAR-10 nets follow He et al. 2015, section 4.2.

    ImageNet:  resnet18/34/50/101/152, resnext50_32x4d, resnext101_32x8d, wide_resnet50_2,
               resnet50_v1 (the paper's Bottleneck, stride on the first 1x1 conv)
    CIFAR-10:  resnet20/32/44/56/110/1202 (shortcut='A' or 'B'), plain20/32/44/56/110

All tensors are NCHW. Only what the fixtures need is here (no dilation, no norm_layer choice).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(in_planes, out_planes, stride=1, groups=1):
    """3x3 convolution, padding 1 (keeps H, W when stride is 1), no bias (a BN follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                     groups=groups, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


# ---------------------------------------------------------------------------------------------
# ImageNet ResNets (torchvision)
# ---------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """Two 3x3 convs: (N, inplanes, H, W) -> (N, planes, H/stride, W/stride)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 stride_in_1x1=False):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand: (N, inplanes, H, W) -> (N, 4*planes, H/s, W/s).

    torchvision ("v1.5") puts the stride on the 3x3 conv; stride_in_1x1=True puts it on the
    first 1x1 conv, as in the paper ("v1"). The parameters are the same either way.
    """
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 stride_in_1x1=False):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, s3, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet: (N, in_channels, H, W) -> logits (N, num_classes).

    Stem conv 7x7/2 + BN + ReLU + maxpool 3x3/2, four stages (64, 128, 256, 512 planes, stride 2
    at the first block of stages 2-4), global average pool, fc.
    """

    def __init__(self, block, layers, num_classes=1000, groups=1, width_per_group=64,
                 in_channels=3, stride_in_1x1=False):
        super().__init__()
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.stride_in_1x1 = stride_in_1x1
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # projection shortcut: 1x1 conv (with the block's stride) + BN
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        self.stride_in_1x1)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, stride_in_1x1=self.stride_in_1x1))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(**kw):
    return ResNet(BasicBlock, [2, 2, 2, 2], **kw)


def resnet34(**kw):
    return ResNet(BasicBlock, [3, 4, 6, 3], **kw)


def resnet50(**kw):
    return ResNet(Bottleneck, [3, 4, 6, 3], **kw)


def resnet101(**kw):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kw)


def resnet152(**kw):
    return ResNet(Bottleneck, [3, 8, 36, 3], **kw)


def resnext50_32x4d(**kw):
    return ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, **kw)


def resnext101_32x8d(**kw):
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8, **kw)


def wide_resnet50_2(**kw):
    return ResNet(Bottleneck, [3, 4, 6, 3], width_per_group=128, **kw)


def resnet50_v1(**kw):
    """ResNet-50 as in the paper: stride 2 on the first 1x1 conv of a downsampling Bottleneck."""
    return ResNet(Bottleneck, [3, 4, 6, 3], stride_in_1x1=True, **kw)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 nets (He et al. 2015, section 4.2): 6n+2 layers
# ---------------------------------------------------------------------------------------------

class ShortcutA(nn.Module):
    """Option A, parameter-free: (N, C, H, W) -> (N, C + 2*pad, H/stride, W/stride).

    Keep every stride-th pixel, then add `pad` zero channels on each side (pad = planes//4 when
    the channels double, as in akamaster/pytorch_resnet_cifar10).
    """

    def __init__(self, stride, pad):
        super().__init__()
        self.stride, self.pad = stride, pad

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back)
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)


class CifarBlock(nn.Module):
    """BasicBlock of the CIFAR nets: (N, in_planes, H, W) -> (N, planes, H/stride, W/stride).

    shortcut: 'A' (zero-pad), 'B' (1x1 projection named downsample.0/.1) or None (plain net).
    The shortcut only differs from the identity where the shape changes.
    """

    def __init__(self, in_planes, planes, stride=1, shortcut='A'):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.use_shortcut = shortcut is not None
        self.shortcut_a = None
        self.downsample = None
        if shortcut is not None and (stride != 1 or in_planes != planes):
            if shortcut == 'A':
                self.shortcut_a = ShortcutA(stride, (planes - in_planes) // 2)
            elif shortcut == 'B':
                self.downsample = nn.Sequential(conv1x1(in_planes, planes, stride),
                                                nn.BatchNorm2d(planes))
            else:
                raise ValueError(f"shortcut must be 'A', 'B' or None, got {shortcut!r}")

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if not self.use_shortcut:
            return self.relu(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        elif self.shortcut_a is not None:
            identity = self.shortcut_a(x)
        else:
            identity = x
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """(N, in_channels, 32, 32) -> logits (N, num_classes): 3x3 stem with 16 channels, three
    stages of n blocks at 16/32/64 channels (stride 2 entering stages 2 and 3), GAP, fc."""

    def __init__(self, n, shortcut='A', num_classes=10, in_channels=3):
        super().__init__()
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.in_planes = 16
        self.layer1 = self._make_layer(16, n, 1, shortcut)
        self.layer2 = self._make_layer(32, n, 2, shortcut)
        self.layer3 = self._make_layer(64, n, 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    def _make_layer(self, planes, n, stride, shortcut):
        blocks = []
        for s in [stride] + [1] * (n - 1):
            blocks.append(CifarBlock(self.in_planes, planes, s, shortcut))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _cifar(n):
    def make(shortcut='A', num_classes=10, in_channels=3):
        return CifarResNet(n, shortcut, num_classes, in_channels)
    make.__name__ = make.__qualname__ = f"resnet{6 * n + 2}"
    make.__doc__ = f"ResNet-{6 * n + 2} for CIFAR-10 (n={n}); shortcut 'A' or 'B'."
    return make


def _plain(n):
    def make(num_classes=10, in_channels=3):
        return CifarResNet(n, None, num_classes, in_channels)
    make.__name__ = make.__qualname__ = f"plain{6 * n + 2}"
    make.__doc__ = f"Plain-{6 * n + 2} for CIFAR-10 (n={n}): resnet{6 * n + 2} with no shortcut."
    return make


resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 = (
    _cifar(n) for n in (3, 5, 7, 9, 18, 200))
plain20, plain32, plain44, plain56, plain110 = (_plain(n) for n in (3, 5, 7, 9, 18))


def num_params(model):
    """Number of learnable scalars (buffers such as running_mean not counted)."""
    return sum(p.numel() for p in model.parameters())


# torchvision's published parameter counts, and the CIFAR resnet20 (option A) of the paper
EXPECTED_NUM_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336, "wide_resnet50_2": 68_883_240,
    "resnet50_v1": 25_557_032, "resnet20": 269_722,
}
