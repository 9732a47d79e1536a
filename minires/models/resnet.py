"""ResNet for ImageNet (He et al., 2015, Table 1), ResNeXt and Wide ResNet, as torchvision builds them.

    stem    conv1 7x7/2, 64 -> bn1 -> relu -> maxpool 3x3/2         224 -> 56
    layer1  n1 blocks,  64 planes, stride 1                          56
    layer2  n2 blocks, 128 planes, stride 2 (first block)            28
    layer3  n3 blocks, 256 planes, stride 2                          14
    layer4  n4 blocks, 512 planes, stride 2                           7
    head    global average pool -> fc (512 * expansion -> classes)

The first block of a stage gets a projection shortcut (``downsample``) exactly where the
shape changes: where it strides, or where the channels grow (layer1 of a bottleneck net:
64 -> 256 at the same size).
"""
import inspect
import textwrap

from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, init
from ..nn.im2col import out_size
from .blocks import BasicBlock, Bottleneck, projection


class ResNet(Module):
    """x (N, in_channels, H, W) -> logits (N, num_classes), or with ``include_top=False`` the
    last feature map (N, 512 * expansion, H/32, W/32)."""

    def __init__(self, block, layers, num_classes=1000, include_top=True, groups=1, width_per_group=64,
                 zero_init_residual=False, in_channels=3, stride_in_1x1=False):
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"ResNet: layers must be four positive block counts, got {layers!r}")
        self.block_kwargs = dict(groups=groups, base_width=width_per_group)
        if block is Bottleneck:
            self.block_kwargs["stride_in_1x1"] = stride_in_1x1
        self.in_channels, self.include_top = in_channels, include_top
        self.inplanes = 64
        self.conv1 = Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = BatchNorm2d(64, inplace=True)
        self.relu = ReLU(inplace=True)  # in place on bn1's output (see blocks.py)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        if include_top:
            self.avgpool = AdaptiveAvgPool2d((1, 1))
            self.flatten = Flatten()
            self.fc = Linear(512 * block.expansion, num_classes)
        init_resnet(self, zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = projection(self.inplanes, planes * block.expansion, stride)
        layers = [block(self.inplanes, planes, stride, downsample, **self.block_kwargs)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **self.block_kwargs) for _ in range(1, blocks)]
        return Sequential(*layers)

    def stages(self):
        """The four stages, layer1 .. layer4 (each a Sequential of blocks), input side first."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x):
        self.check_input(x, ndim=4, channels=self.in_channels)
        check_size(self, x.shape, [("conv1", 2), ("maxpool", 2), ("layer2", 2), ("layer3", 2), ("layer4", 2)])
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        if not self.include_top:
            return x
        return self.fc(self.flatten(self.avgpool(x)))

    def backward(self, grad_out):
        g = grad_out
        if self.include_top:
            g = self.fc.backward(g)
            g = self.flatten.backward(g)
            g = self.avgpool.backward(g)
        for stage in (self.layer4, self.layer3, self.layer2, self.layer1):
            g = stage.backward(g)
        g = self.maxpool.backward(g)
        g = self.relu.backward(g)
        g = self.bn1.backward(g)
        return self.conv1.backward(g)


def init_resnet(model, zero_init_residual=False):
    """torchvision's initialisation: Kaiming normal (fan_out, ReLU) for every conv, batch norm
    weight 1 and bias 0, Linear as PyTorch's default. ``zero_init_residual`` zeroes the last
    batch norm of each block, so that every block starts as the identity (Goyal et al., 2017)."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            m.weight.data[...] = init.kaiming_normal_fan_out(m.weight.data.shape)
        elif isinstance(m, BatchNorm2d):
            m.weight.data[...] = 1
            m.bias.data[...] = 0
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                m.bn3.weight.data[...] = 0
            elif isinstance(m, BasicBlock):
                m.bn2.weight.data[...] = 0


def check_size(model, shape, downsamplings):
    """Raise a clear error, naming the stage, if an input of ``shape`` shrinks to nothing or, in
    training mode, leaves batch norm a single value per channel. ``downsamplings``: the stages
    that halve the size, in order, as (name, stride); each halves as a 3x3/2 (or 7x7/2) with
    padding does: n -> (n - 1) // 2 + 1."""
    N, _, H, W = shape
    for name, s in downsamplings:
        H, W = out_size(H, 3, s, 1), out_size(W, 3, s, 1)
        if model.training and N * H * W < 2:
            raise ValueError(f"{model._describe()}: input of shape {tuple(shape)} is too small: after {name} the "
                             f"feature maps are {H}x{W} with batch {N}, and batch norm in training mode needs more "
                             f"than one value per channel; use larger images or a batch of at least 2")


# What each builder's keywords mean: ``with_arguments`` appends the lines for the ones a builder takes.
ARGUMENTS = {
    "num_classes": "outputs of the classifier, the logits (ImageNet: 1000)",
    "include_top": "False: no average pool and no fc; the model returns its last feature map",
    "zero_init_residual": "zero each block's last batch norm weight: every block starts as the identity "
                          "(Goyal et al., 2017)",
    "in_channels": "channels of the input images (3: RGB, 1: grey)",
    "groups": "bottleneck nets: groups of each block's 3x3 convolution (ResNeXt); basic blocks take only 1",
    "width_per_group": "bottleneck nets: the 3x3's width per group, at 64 planes (ResNeXt: 4 or 8, Wide ResNet: "
                       "128); basic blocks take only 64",
    "stride_in_1x1": "bottleneck nets: the stride on the first 1x1 (the paper's \"v1\"), not on the 3x3 "
                     "(torchvision's \"v1.5\"); basic blocks ignore it",
}


def with_arguments(arguments):
    """Decorator: append to a builder's docstring one line per keyword of its signature, read from
    ``arguments`` ({name: meaning}); help() shows the defaults in the signature above it."""
    def document(builder):
        names = list(inspect.signature(builder).parameters)
        width = max(len(n) for n in names) + 6
        lines = [textwrap.fill(arguments[n], 100, initial_indent=f"    {n:<{width - 6}}  ",
                               subsequent_indent=" " * width) for n in names]
        builder.__doc__ = inspect.cleandoc(builder.__doc__) + "\n\nArguments:\n" + "\n".join(lines) + "\n"
        return builder
    return document


@with_arguments(ARGUMENTS)
def resnet18(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
             width_per_group=64, stride_in_1x1=False):
    """ResNet-18 (He et al., 2015, Table 1): basic blocks, [2, 2, 2, 2] per stage.

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 512, H/32, W/32), sizes rounded up.

        >>> model = resnet18(include_top=False)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 512, 2, 2)
    """
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=width_per_group, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnet34(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
             width_per_group=64, stride_in_1x1=False):
    """ResNet-34 (He et al., 2015, Table 1): basic blocks, [3, 4, 6, 3] per stage.

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 512, H/32, W/32), sizes rounded up.

        >>> model = resnet34(num_classes=10, in_channels=1)
        >>> model(np.zeros((2, 1, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=width_per_group, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnet50(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
             width_per_group=64, stride_in_1x1=False):
    """ResNet-50 (He et al., 2015, Table 1): bottlenecks, [3, 4, 6, 3] per stage, the stride on the 3x3 ("v1.5").

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = resnet50(num_classes=10, zero_init_residual=True)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=width_per_group, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnet101(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
              width_per_group=64, stride_in_1x1=False):
    """ResNet-101 (He et al., 2015, Table 1): bottlenecks, [3, 4, 23, 3] per stage.

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = resnet101(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=width_per_group, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnet152(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
              width_per_group=64, stride_in_1x1=False):
    """ResNet-152 (He et al., 2015, Table 1): bottlenecks, [3, 8, 36, 3] per stage.

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = resnet152(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=width_per_group, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnext50_32x4d(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3,
                    stride_in_1x1=False):
    """ResNeXt-50 32x4d (Xie et al., 2017): ResNet-50 with each 3x3 split into 32 groups of width 4 (at 64 planes).

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = resnext50_32x4d(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top, groups=32,
                  width_per_group=4, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnext101_32x8d(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3,
                     stride_in_1x1=False):
    """ResNeXt-101 32x8d (Xie et al., 2017): ResNet-101 with each 3x3 split into 32 groups of width 8 (at 64 planes).

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = resnext101_32x8d(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, include_top=include_top, groups=32,
                  width_per_group=8, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def wide_resnet50_2(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
                    stride_in_1x1=False):
    """Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016): ResNet-50 with the bottleneck's inner width doubled.

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = wide_resnet50_2(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=64 * 2, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=stride_in_1x1)


@with_arguments(ARGUMENTS)
def resnet50_v1(*, num_classes=1000, include_top=True, zero_init_residual=False, in_channels=3, groups=1,
                width_per_group=64):
    """ResNet-50 exactly as the paper (He et al., 2015): the stride on the bottleneck's first 1x1 ("v1").

    x (N, in_channels, H, W) -> logits (N, num_classes); ``include_top=False``: the feature map
    (N, 2048, H/32, W/32), sizes rounded up.

        >>> model = resnet50_v1(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top, groups=groups,
                  width_per_group=width_per_group, zero_init_residual=zero_init_residual, in_channels=in_channels,
                  stride_in_1x1=True)
