"""The paper's CIFAR-10 networks (He et al., 2015, section 4.2) and their plain twins.

    conv1   3x3, 16 channels -> bn1 -> relu                 32x32
    layer1  n basic blocks, 16 channels                     32x32
    layer2  n basic blocks, 32 channels (first: stride 2)   16x16
    layer3  n basic blocks, 64 channels (first: stride 2)    8x8
    head    global average pool -> fc (64 -> 10)

6n + 2 weighted layers: n = 3, 5, 7, 9, 18, 200 give ResNet-20, 32, 44, 56, 110, 1202.
Where a block halves the size and doubles the channels, the shortcut is the paper's
parameter-free option A (subsample, zero-pad the new channels) by default, or a 1x1
projection (option B). The plain nets are the same stacks with no shortcut at all: the
paper's degradation experiment trains both and finds the deeper plain net *worse*.
Any number of input channels and any input size work (the digits are 1x8x8).
"""
from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, Sequential
from .blocks import BasicBlock, ShortcutA, projection
from .resnet import check_size, init_resnet, with_arguments


class CifarResNet(Module):
    """x (N, in_channels, H, W) -> logits (N, num_classes)."""

    def __init__(self, n, num_classes=10, shortcut="A", residual=True, in_channels=3, zero_init_residual=False):
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' (zero-padding) or 'B' (projection), got {shortcut!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"CifarResNet: n (blocks per stage) must be a positive int, got {n!r}")
        self.n, self.shortcut, self.residual, self.in_channels = n, shortcut, residual, in_channels
        self.conv1 = Conv2d(in_channels, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = BatchNorm2d(16, inplace=True)
        self.relu = ReLU(inplace=True)  # in place on bn1's output (see blocks.py)
        self.layer1 = self._make_layer(16, 16, n, stride=1)
        self.layer2 = self._make_layer(16, 32, n, stride=2)
        self.layer3 = self._make_layer(32, 64, n, stride=2)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.flatten = Flatten()
        self.fc = Linear(64, num_classes)
        init_resnet(self, zero_init_residual)

    def _make_layer(self, inplanes, planes, blocks, stride):
        downsample = None
        if self.residual and (stride != 1 or inplanes != planes):
            if self.shortcut == "A":
                downsample = ShortcutA((planes - inplanes) // 2)
            else:
                downsample = projection(inplanes, planes, stride)
        layers = [BasicBlock(inplanes, planes, stride, downsample, residual=self.residual)]
        layers += [BasicBlock(planes, planes, residual=self.residual) for _ in range(1, blocks)]
        return Sequential(*layers)

    def stages(self):
        """The three stages, layer1 .. layer3 (each a Sequential of blocks), input side first."""
        return [self.layer1, self.layer2, self.layer3]

    def forward(self, x):
        self.check_input(x, ndim=4, channels=self.in_channels)
        check_size(self, x.shape, [("layer2", 2), ("layer3", 2)])
        x = self.relu(self.bn1(self.conv1(x)))
        for stage in (self.layer1, self.layer2, self.layer3):
            x = stage(x)
        return self.fc(self.flatten(self.avgpool(x)))

    def backward(self, grad_out):
        g = self.fc.backward(grad_out)
        g = self.flatten.backward(g)
        g = self.avgpool.backward(g)
        for stage in (self.layer3, self.layer2, self.layer1):
            g = stage.backward(g)
        g = self.relu.backward(g)
        g = self.bn1.backward(g)
        return self.conv1.backward(g)


# What each builder's keywords mean: with_arguments appends the lines for the ones a builder takes.
ARGUMENTS = {
    "num_classes": "outputs of the classifier, the logits (CIFAR-10: 10)",
    "shortcut": "where a block halves the size and doubles the channels: \"A\", subsample and zero-pad "
                "(no parameters, the paper's), or \"B\", a 1x1 projection",
    "in_channels": "channels of the input images (3: RGB, 1: grey)",
    "residual": "False: no shortcuts at all, the plain twin (plain20 ...)",
    "zero_init_residual": "zero each block's last batch norm weight: every block starts as the identity "
                          "(Goyal et al., 2017)",
}
PLAIN_ARGUMENTS = {**ARGUMENTS,
                   "shortcut": "ignored: a plain net has no shortcut (taken so that every CIFAR builder takes "
                               "the same keywords)",
                   "zero_init_residual": "zero each block's last batch norm weight (meant for residual nets: "
                                         "without a shortcut, every block then starts at zero)"}
SHAPES = """x (N, in_channels, H, W) -> logits (N, num_classes). The paper's images are 32x32; any size
    works (minires's digits are 1x8x8): a global average pool ends the net."""


def _residual(n):
    def make(num_classes=10, shortcut="A", in_channels=3, *, residual=True, zero_init_residual=False):
        return CifarResNet(n, num_classes, shortcut=shortcut, residual=residual, in_channels=in_channels,
                           zero_init_residual=zero_init_residual)
    depth = 6 * n + 2
    make.__name__ = make.__qualname__ = f"resnet{depth}"
    make.__doc__ = f"""ResNet-{depth} for CIFAR-10 (He et al., 2015, section 4.2): n = {n} basic blocks per stage.

    {SHAPES}

        >>> model = resnet{depth}(num_classes=10, in_channels=1)
        >>> model(np.zeros((2, 1, 8, 8), np.float32)).shape
        (2, 10)
    """
    return with_arguments(ARGUMENTS)(make)


def _plain(n):
    def make(num_classes=10, in_channels=3, *, shortcut="A", zero_init_residual=False):
        return CifarResNet(n, num_classes, shortcut=shortcut, residual=False, in_channels=in_channels,
                           zero_init_residual=zero_init_residual)
    depth = 6 * n + 2
    make.__name__ = make.__qualname__ = f"plain{depth}"
    make.__doc__ = f"""Plain-{depth}: ResNet-{depth} without shortcuts (the paper's degradation experiment, Figure 6).

    {SHAPES}

        >>> model = plain{depth}(num_classes=10, in_channels=1)
        >>> model(np.zeros((2, 1, 8, 8), np.float32)).shape
        (2, 10)
    """
    return with_arguments(PLAIN_ARGUMENTS)(make)


resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 = (_residual(n) for n in (3, 5, 7, 9, 18, 200))
plain20, plain32, plain44, plain56, plain110 = (_plain(n) for n in (3, 5, 7, 9, 18))
