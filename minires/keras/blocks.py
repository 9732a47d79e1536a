"""The blocks of keras.applications' ResNets, built from minires's layers and the Keras ones (layers.py).

``BottleneckV1``       keras.applications ResNet50/101/152's block: conv biases, stride on the first 1x1
``PreActBottleneck``   ResNet50V2/101V2/152V2's block: "Identity Mappings in Deep Residual Networks"
                       (He et al., 2016), batch norm and ReLU *before* each convolution

Every module that holds weights carries ``keras_name``, the name of the Keras layer whose
weights it takes (``conv2_block1_1_conv``); ``minires.keras.weights`` loads by it.
"""
from ..nn import Conv2d, MaxPool2d, Module, ReLU
from ..nn.padding import ZeroPad2d
from .layers import KerasBatchNorm2d, named


class BottleneckV1(Module):
    """keras.applications' ResNet v1 block: x (N, in, H, W) -> (N, 4*filters, H/stride, W/stride).

        1x1/stride (bias) -> bn -> relu -> 3x3 "same" (bias) -> bn -> relu -> 1x1 (bias) -> bn
        + shortcut (1x1/stride conv + bn, or the identity) -> relu

    The stride sits on the first 1x1 (the paper's v1; torchvision's v1.5 puts it on the 3x3).
    Every conv has a bias, although a batch norm follows and cancels it (Keras's default).
    """

    def __init__(self, inplanes, filters, stride=1, conv_shortcut=True, name="block"):
        eps = 1.001e-5
        if conv_shortcut:
            self.conv0 = named(Conv2d(inplanes, 4 * filters, 1, stride=stride, bias=True), f"{name}_0_conv")
            self.bn0 = named(KerasBatchNorm2d(4 * filters, eps, inplace=True), f"{name}_0_bn")
        elif stride != 1 or inplanes != 4 * filters:
            raise ValueError(f"BottleneckV1 {name}: an identity shortcut needs stride 1 and "
                             f"{4 * filters} input channels, got stride {stride} and {inplanes}")
        self.conv_shortcut = conv_shortcut
        self.conv1 = named(Conv2d(inplanes, filters, 1, stride=stride, bias=True), f"{name}_1_conv")
        self.bn1 = named(KerasBatchNorm2d(filters, eps, inplace=True), f"{name}_1_bn")
        self.relu1 = ReLU(inplace=True)
        self.conv2 = named(Conv2d(filters, filters, 3, padding="same", bias=True), f"{name}_2_conv")
        self.bn2 = named(KerasBatchNorm2d(filters, eps, inplace=True), f"{name}_2_bn")
        self.relu2 = ReLU(inplace=True)
        self.conv3 = named(Conv2d(filters, 4 * filters, 1, bias=True), f"{name}_3_conv")
        self.bn3 = named(KerasBatchNorm2d(4 * filters, eps, inplace=True), f"{name}_3_bn")
        self.relu3 = ReLU(inplace=True)

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.bn0(self.conv0(x)) if self.conv_shortcut else x    # in place: out is bn3's, ours
        return self.relu3(out)

    def backward(self, grad_out):
        g = self.relu3.backward(grad_out)                               # through the final ReLU
        g_main = self.conv3.backward(self.bn3.backward(g))              # main path
        g_main = self.conv2.backward(self.bn2.backward(self.relu2.backward(g_main)))
        g_main = self.conv1.backward(self.bn1.backward(self.relu1.backward(g_main)))
        g_short = self.conv0.backward(self.bn0.backward(g)) if self.conv_shortcut else g   # shortcut
        g_main += g_short                                               # the two paths are summed
        return g_main


class PreActBottleneck(Module):
    """ResNet v2's block (He et al., 2016): x (N, in, H, W) -> (N, 4*filters, H/stride, W/stride).

        p = relu(bn(x))                                   "pre-activation", shared by both paths
        main:     1x1 (no bias) -> bn -> relu -> pad 1 -> 3x3/stride (no bias) -> bn -> relu -> 1x1 (bias)
        shortcut: 1x1/stride conv of p (first block of a stage), else x itself (subsampled by a
                  1x1 max-pool of stride 2 where the block strides)
        out = shortcut + main                             no ReLU after the sum

    Why: in v1 every block ends in relu(x + F(x)), so the identity path is cut by a ReLU at
    every block. Here nothing touches the sum, so x_L = x_l + sum of the branches and the
    gradient reaching block l contains the upstream gradient *unchanged* -- the clean path
    the paper is about. Backward: the gradient splits at the sum; the main path's gradient
    and (with a conv shortcut) the shortcut's meet again at p, before the pre-activation.
    """

    def __init__(self, inplanes, filters, stride=1, conv_shortcut=False, name="block"):
        eps = 1.001e-5
        self.preact_bn = named(KerasBatchNorm2d(inplanes, eps), f"{name}_preact_bn")   # not in place: x is the shortcut
        self.preact_relu = ReLU(inplace=True)
        self.conv_shortcut, self.stride = conv_shortcut, stride
        if conv_shortcut:
            self.conv0 = named(Conv2d(inplanes, 4 * filters, 1, stride=stride, bias=True), f"{name}_0_conv")
        elif inplanes != 4 * filters:
            raise ValueError(f"PreActBottleneck {name}: an identity shortcut needs {4 * filters} input channels, "
                             f"got {inplanes}")
        elif stride != 1:
            self.subsample = MaxPool2d(1, stride)                       # Keras's MaxPooling2D(1, strides=stride)
        self.conv1 = named(Conv2d(inplanes, filters, 1, bias=False), f"{name}_1_conv")
        self.bn1 = named(KerasBatchNorm2d(filters, eps, inplace=True), f"{name}_1_bn")
        self.relu1 = ReLU(inplace=True)
        self.pad2 = ZeroPad2d(1)
        self.conv2 = named(Conv2d(filters, filters, 3, stride=stride, bias=False), f"{name}_2_conv")
        self.bn2 = named(KerasBatchNorm2d(filters, eps, inplace=True), f"{name}_2_bn")
        self.relu2 = ReLU(inplace=True)
        self.conv3 = named(Conv2d(filters, 4 * filters, 1, bias=True), f"{name}_3_conv")

    def _shortcut(self, x, p):
        if self.conv_shortcut:
            return self.conv0(p)
        return self.subsample(x) if self.stride != 1 else x

    def forward(self, x):
        p = self.preact_relu(self.preact_bn(x))
        out = self.relu1(self.bn1(self.conv1(p)))
        out = self.relu2(self.bn2(self.conv2(self.pad2(out))))
        out = self.conv3(out)
        out += self._shortcut(x, p)                                     # in place: out is conv3's, ours
        return out

    def backward(self, grad_out):
        g = grad_out                                                    # no ReLU after the sum
        g_main = self.conv3.backward(g)                                 # main path
        g_main = self.pad2.backward(self.conv2.backward(self.bn2.backward(self.relu2.backward(g_main))))
        g_p = self.conv1.backward(self.bn1.backward(self.relu1.backward(g_main)))
        if self.conv_shortcut:
            g_p = g_p + self.conv0.backward(g)                          # both paths start at p
            return self.preact_bn.backward(self.preact_relu.backward(g_p))
        g_x = self.preact_bn.backward(self.preact_relu.backward(g_p))
        g_short = self.subsample.backward(g) if self.stride != 1 else g   # the clean identity path
        return g_x + g_short                                            # the two paths are summed
