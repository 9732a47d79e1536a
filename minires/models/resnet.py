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
    """ResNet-50 with the bottleneck's inner width doubled (Zagoruyko & Komodakis, 2016)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], width_per_group=64 * 2, **kw)


def resnet50_v1(**kw):
    """ResNet-50 exactly as the paper: the stride on the bottleneck's first 1x1 conv."""
    return ResNet(Bottleneck, [3, 4, 6, 3], stride_in_1x1=True, **kw)
