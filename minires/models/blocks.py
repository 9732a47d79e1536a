"""Residual blocks: BasicBlock (two 3x3 convs) and Bottleneck (1x1, 3x3, 1x1), and shortcuts.

The whole idea of ResNet (He et al., 2015) is one line of the forward,
``out = relu(main(x) + shortcut(x))``, and its mirror image in the backward: the gradient
that reaches the block's output goes through the final ReLU, then *splits* — one copy
flows back through the main path, one through the shortcut — and the two are *summed*.
Because the identity shortcut passes its copy unchanged, a deep stack of blocks always
has a short, undamped path for the gradient.

Attribute names are torchvision's, so the state_dict keys are too (``conv1.weight``,
``bn2.running_var``, ``downsample.0.weight``). torchvision reuses one ``relu`` module;
here each ReLU is its own module (``relu1``, ``relu2`` ...) because each keeps what its
own backward needs. ReLUs hold no parameters, so the keys are unchanged.

Memory (the fast path): every batch norm writes its output over its convolution's output
(``BatchNorm2d(inplace=True)``), every ReLU over that again (``ReLU(inplace=True)``), and the
residual sum is added in place into the last batch norm's output. Each of them overwrites
only an array that no layer kept for its backward (the rule: ``engine/memory.py:may_overwrite``): a
convolution keeps its input, not its output, and a batch norm keeps xhat, not its output.
One fresh activation-sized array per layer, not three. The plain path ignores ``inplace``.
"""
from ..backend import xp_of
from ..nn import BatchNorm2d, Conv2d, Module, ReLU, Sequential


def conv3x3(in_planes, out_planes, stride=1, groups=1):
    """3x3 convolution with padding 1 (keeps the size at stride 1), no bias: a batch norm follows."""
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


def projection(in_planes, out_planes, stride):
    """The "dashed" shortcut of the paper's Figure 3 (option B): 1x1 conv with stride + batch norm,
    used where the block changes the shape. Keys: ``downsample.0.*`` and ``downsample.1.*``."""
    return Sequential(conv1x1(in_planes, out_planes, stride), BatchNorm2d(out_planes, inplace=True))


class ShortcutA(Module):
    """The paper's parameter-free shortcut for its CIFAR nets (option A).

    x (N, C, H, W) -> (N, C + 2*pad, ceil(H/2), ceil(W/2)): keep every other pixel (the
    stride-2 subsampling), then pad ``pad`` channels of zeros on each side, so the
    identity can be added to a block that halves the size and doubles the channels.
    Backward: the padded channels' gradient is dropped, the rest goes back to the kept pixels.
    """

    def __init__(self, pad):
        self.pad = pad

    def extra_repr(self):
        return f"subsample 2, zero-pad {self.pad} channels each side"

    def forward(self, x):
        N, C, H, W = x.shape
        sub = x[:, :, ::2, ::2]
        out = self._zeros(x, (N, C + 2 * self.pad, sub.shape[2], sub.shape[3]))
        out[:, self.pad:self.pad + C] = sub
        self.save_for_backward(x.shape)
        return out

    def backward(self, grad_out):
        N, C, H, W = self.saved[0]
        dx = self._zeros(grad_out, (N, C, H, W))
        dx[:, :, ::2, ::2] = grad_out[:, self.pad:self.pad + C]
        return dx

    @staticmethod
    def _zeros(like, shape):
        """Zeros of ``shape``, laid out in memory as ``like`` is (order 'K'): the residual sum
        then adds two arrays of the same layout, whichever path made them."""
        return xp_of(like).zeros_like(like, shape=shape)


class BasicBlock(Module):
    """Two 3x3 conv-bn layers and a shortcut: x (N, in, H, W) -> (N, planes, H/stride, W/stride).

    ``downsample``: the shortcut module where the shape changes (None: identity).
    ``residual=False`` drops the shortcut altogether: the "plain" block of the paper's
    degradation experiment, otherwise identical.
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, residual=True):
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and base_width=64 (use Bottleneck for ResNeXt)")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = BatchNorm2d(planes, inplace=True)
        self.relu1 = ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = BatchNorm2d(planes, inplace=True)
        self.downsample = downsample
        self.relu2 = ReLU(inplace=True)
        self.residual = residual

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)   # in place: bn2's output, kept by no layer
        return self.relu2(out)

    def backward(self, grad_out):
        g = self.relu2.backward(grad_out)                               # through the final ReLU
        g_main = self.bn2.backward(g)                                   # main path, last layer first
        g_main = self.conv2.backward(g_main)
        g_main = self.relu1.backward(g_main)
        g_main = self.bn1.backward(g_main)
        g_main = self.conv1.backward(g_main)
        if not self.residual:
            return g_main
        g_short = g if self.downsample is None else self.downsample.backward(g)  # shortcut
        g_main += g_short                                               # the two paths are summed
        return g_main


class Bottleneck(Module):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand by 4), each with batch norm, and a shortcut.

    x (N, in, H, W) -> (N, 4*planes, H/stride, W/stride). The stride sits on the 3x3 conv
    (torchvision's "ResNet v1.5", slightly more accurate); ``stride_in_1x1=True`` puts it
    on the first 1x1 as in the original paper ("v1"). ``groups`` and ``base_width`` give
    ResNeXt: the 3x3 is a grouped convolution of width planes * base_width/64 * groups.
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 residual=True, stride_in_1x1=False):
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, s1)
        self.bn1 = BatchNorm2d(width, inplace=True)
        self.relu1 = ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, s3, groups)
        self.bn2 = BatchNorm2d(width, inplace=True)
        self.relu2 = ReLU(inplace=True)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = BatchNorm2d(planes * self.expansion, inplace=True)
        self.downsample = downsample
        self.relu3 = ReLU(inplace=True)
        self.residual = residual

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)   # in place: bn3's output, kept by no layer
        return self.relu3(out)

    def backward(self, grad_out):
        g = self.relu3.backward(grad_out)                               # through the final ReLU
        g_main = self.bn3.backward(g)                                   # main path, last layer first
        g_main = self.conv3.backward(g_main)
        g_main = self.relu2.backward(g_main)
        g_main = self.bn2.backward(g_main)
        g_main = self.conv2.backward(g_main)
        g_main = self.relu1.backward(g_main)
        g_main = self.bn1.backward(g_main)
        g_main = self.conv1.backward(g_main)
        if not self.residual:
            return g_main
        g_short = g if self.downsample is None else self.downsample.backward(g)  # shortcut
        g_main += g_short                                               # the two paths are summed
        return g_main
