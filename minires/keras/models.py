"""The Keras half: the seed's TensorFlow ResNets and keras.applications' ResNet v1 and v2.

Three families, all built from minires's own layers, all loading Keras weight files
(``minires.keras.weights``) without TensorFlow:

``tf_resnet34/50/101``  the seed tutorial's TensorFlow/Keras code: torchvision's network (stride
    on the 3x3, "v1.5"; no conv biases) but every strided conv and the max-pool with
    ``padding="SAME"`` (on 224 the 7x7/2 stem pads 2 before and 3 after, PyTorch 3 and 3:
    ``minires.nn.padding``), ``BatchNormalization(momentum=0.9, epsilon=1e-5)`` (PyTorch's
    momentum 0.1), epsilon 1.001e-5 on the shortcut's batch norm, a softmax at the end, layer
    names ``block1/unit_1/conv1`` and ``block1/unit_1/conv1/BatchNorm``. Built as
    :class:`~minires.models.resnet.ResNet` with those layers swapped in: the same blocks.
``keras_resnet50/101/152``  ``keras.applications.ResNet50`` ...: the paper's v1 (stride on the
    first 1x1), biases on every conv, epsilon 1.001e-5, momentum 0.99 (PyTorch 0.01), explicit
    ``ZeroPadding2D`` before the stem's conv and max-pool. Preprocessing "caffe".
``keras_resnet50v2/101v2/152v2``  ``keras.applications.ResNet50V2`` ...: pre-activation
    (:class:`~minires.keras.blocks.PreActBottleneck`), the stride on the *last* block of a stage.
    Preprocessing "tf".

Parameter counts: ``num_parameters()`` counts trainable scalars; Keras's ``count_params()``
also counts the batch norms' moving mean and variance (``keras_param_count``).

Channels-last: ``data_format="channels_last"`` takes (N, H, W, C) batches, returns gradients
(and, without the top, feature maps) in that layout. Cost: none beyond a transposed *view* at
each end. Inside, activations are channel-major (``engine/memory.py``) either way; the stem's
padding copies its input into a fresh channel-major buffer (the NCHW path makes the same copy),
so the layout changes for free there, and the input gradient is a view of the stem's.
"""
from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from ..nn.padding import ZeroPad2d
from ..models.blocks import BasicBlock, Bottleneck
from .blocks import BottleneckV1, PreActBottleneck
from .layers import KerasBatchNorm2d, Softmax, keras_bn, named
from ..models.resnet import ResNet, init_resnet, with_arguments

DATA_FORMATS = ("channels_first", "channels_last")


class ChannelsLast:
    """Mixin: ``data_format`` handling at the model's two ends (transposed views, no copies)."""

    def _set_format(self, data_format):
        if data_format not in DATA_FORMATS:
            raise ValueError(f"{type(self).__name__}: data_format must be 'channels_first' (N, C, H, W) or "
                             f"'channels_last' (N, H, W, C), got {data_format!r}")
        self.data_format = data_format

    def _input(self, x):
        if self.data_format == "channels_last":
            self.check_input(x, ndim=4, channels=self.in_channels, channel_axis=3, what="input (N, H, W, C)")
            return x.transpose(0, 3, 1, 2)                 # a view: (N, C, H, W)
        self.check_input(x, ndim=4, channels=self.in_channels)
        return x

    def _output(self, y):
        return y.transpose(0, 2, 3, 1) if self.data_format == "channels_last" and y.ndim == 4 else y

    def _grad_in(self, g):
        return g.transpose(0, 3, 1, 2) if self.data_format == "channels_last" and g.ndim == 4 else g

    def _grad_out(self, dx):
        return dx.transpose(0, 2, 3, 1) if self.data_format == "channels_last" else dx

    def keras_layers(self):
        """[(Keras layer name, module)] for every module that takes weights from a Keras file."""
        return [(m.keras_name, m) for m in self.modules() if hasattr(m, "keras_name")]

    def keras_param_count(self):
        """Keras's ``model.count_params()``: trainable scalars plus batch norm moving statistics."""
        return self.num_parameters() + sum(m.running_mean.size + m.running_var.size
                                           for m in self.modules() if isinstance(m, BatchNorm2d))


class KerasResNet(ChannelsLast, Module):
    """keras.applications' ResNet (``version=1``) and ResNetV2 (``version=2``).

    x (N, 3, H, W) (or (N, H, W, 3), channels-last) -> class probabilities (N, classes)
    (``classifier_activation=None``: logits; ``include_top=False``: the last feature map).

        conv1_pad (3) -> conv1 7x7/2 (bias) [-> conv1_bn -> relu] -> pool1_pad (1) -> max-pool 3x3/2
        conv2 .. conv5 stages of bottlenecks ([-> post_bn -> relu] in v2) -> avg_pool -> predictions

    ``layers``: blocks per stage; ``widths``: each stage's bottleneck width (64, 128, 256, 512).
    """

    def __init__(self, version, layers, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                 classifier_activation="softmax", in_channels=3, data_format="channels_first"):
        if version not in (1, 2):
            raise ValueError(f"KerasResNet: version must be 1 (ResNet50 ...) or 2 (ResNet50V2 ...), got {version!r}")
        if len(layers) != len(widths) or any(not isinstance(n, int) or n < (2 if version == 2 else 1)
                                             for n in layers):
            raise ValueError(f"KerasResNet: layers must be one block count per stage (at least "
                             f"{2 if version == 2 else 1}), got {layers!r} for widths {widths!r}")
        if classifier_activation not in ("softmax", None):
            raise ValueError(f"KerasResNet: classifier_activation must be 'softmax' or None, got "
                             f"{classifier_activation!r}")
        self._set_format(data_format)
        self.version, self.in_channels, self.include_top = version, in_channels, include_top
        self.preprocessing = "caffe" if version == 1 else "tf"
        self.conv1_pad = ZeroPad2d(3)
        self.conv1 = named(Conv2d(in_channels, 64, 7, stride=2, bias=True), "conv1_conv")
        if version == 1:
            self.bn1 = named(KerasBatchNorm2d(64, 1.001e-5, inplace=True), "conv1_bn")
            self.relu = ReLU(inplace=True)
        self.pool1_pad = ZeroPad2d(1)
        self.maxpool = MaxPool2d(3, 2)
        inplanes, self.n_stages = 64, len(layers)
        for i, (n, filters) in enumerate(zip(layers, widths)):
            name = f"conv{i + 2}"
            if version == 1:   # stride on the first block, except the first stage
                stride = 1 if i == 0 else 2
                blocks = [BottleneckV1(inplanes, filters, stride, True, f"{name}_block1")]
                blocks += [BottleneckV1(4 * filters, filters, 1, False, f"{name}_block{j}") for j in range(2, n + 1)]
            else:              # stride on the last block, except the last stage
                stride = 1 if i == len(layers) - 1 else 2
                blocks = [PreActBottleneck(inplanes, filters, 1, True, f"{name}_block1")]
                blocks += [PreActBottleneck(4 * filters, filters, 1, False, f"{name}_block{j}") for j in range(2, n)]
                blocks += [PreActBottleneck(4 * filters, filters, stride, False, f"{name}_block{n}")]
            setattr(self, f"layer{i + 1}", Sequential(*blocks))
            inplanes = 4 * filters
        if version == 2:
            self.post_bn = named(KerasBatchNorm2d(inplanes, 1.001e-5, inplace=True), "post_bn")
            self.post_relu = ReLU(inplace=True)
        if include_top:
            self.avgpool = AdaptiveAvgPool2d((1, 1))
            self.flatten = Flatten()
            self.fc = named(Linear(inplanes, num_classes), "predictions")
            if classifier_activation == "softmax":
                self.softmax = Softmax()
        init_resnet(self)

    def stages(self):
        """The stages, layer1 .. (each a Sequential of blocks), input side first."""
        return [getattr(self, f"layer{i + 1}") for i in range(self.n_stages)]

    def forward(self, x):
        x = self.conv1(self.conv1_pad(self._input(x)))
        if self.version == 1:
            x = self.relu(self.bn1(x))
        x = self.maxpool(self.pool1_pad(x))
        for stage in self.stages():
            x = stage(x)
        if self.version == 2:
            x = self.post_relu(self.post_bn(x))
        if not self.include_top:
            return self._output(x)
        x = self.fc(self.flatten(self.avgpool(x)))
        return self.softmax(x) if hasattr(self, "softmax") else x

    def backward(self, grad_out):
        g = self._grad_in(grad_out)
        if self.include_top:
            if hasattr(self, "softmax"):
                g = self.softmax.backward(g)
            g = self.avgpool.backward(self.flatten.backward(self.fc.backward(g)))
        if self.version == 2:
            g = self.post_bn.backward(self.post_relu.backward(g))
        for stage in reversed(self.stages()):
            g = stage.backward(g)
        g = self.pool1_pad.backward(self.maxpool.backward(g))
        if self.version == 1:
            g = self.bn1.backward(self.relu.backward(g))
        return self._grad_out(self.conv1_pad.backward(self.conv1.backward(g)))


class TFResNet(ChannelsLast, ResNet):
    """The seed's TensorFlow ResNet: torchvision's ResNet with TensorFlow's padding, Keras's batch
    norm, a softmax, and the seed's layer names (see the module docstring)."""

    # Its weighted modules come in the order Keras tracks the tutorial's layers, so a file
    # whose names TensorFlow lost pairs with them one by one (minires.keras.structure).
    matches_by_tracking_order = True

    def __init__(self, block, layers, num_classes=1000, include_top=True, classifier_activation="softmax",
                 in_channels=3, data_format="channels_first", preprocessing="tf"):
        if classifier_activation not in ("softmax", None):
            raise ValueError(f"TFResNet: classifier_activation must be 'softmax' or None, got "
                             f"{classifier_activation!r}")
        self._set_format(data_format)
        super().__init__(block, layers, num_classes=num_classes, include_top=include_top, in_channels=in_channels)
        self.preprocessing = preprocessing
        self.conv1 = named(Conv2d(in_channels, 64, 7, stride=2, padding="same", bias=False), "conv1")
        self.bn1 = keras_bn(64, 1e-5, "conv1/BatchNorm")
        self.maxpool = MaxPool2d(3, 2, padding="same")
        for s, stage in enumerate(self.stages()):
            for u, blk in enumerate(stage):
                self._tensorflowify(blk, f"block{s + 1}/unit_{u + 1}")
        if include_top:
            named(self.fc, "logits")
            if classifier_activation == "softmax":
                self.softmax = Softmax()
        for path, m in self.named_modules():   # swapped-in layers learn their full dotted names
            object.__setattr__(m, "path", path)
        init_resnet(self)

    @staticmethod
    def _tensorflowify(blk, name):
        """Swap a torchvision block's layers for the seed's: "same" convs, Keras batch norms, its names."""
        n_convs = 3 if isinstance(blk, Bottleneck) else 2
        for k in range(1, n_convs + 1):
            conv = getattr(blk, f"conv{k}")
            if conv.stride != (1, 1):    # a strided 3x3: TensorFlow's asymmetric padding
                conv = Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, padding="same",
                              bias=False)
            setattr(blk, f"conv{k}", named(conv, f"{name}/conv{k}"))
            setattr(blk, f"bn{k}", keras_bn(conv.out_channels, 1e-5, f"{name}/conv{k}/BatchNorm"))
        if blk.downsample is not None:   # a strided 1x1 needs no padding: "same" is "valid" there
            named(blk.downsample[0], f"{name}/shortcut")
            setattr(blk.downsample, "1", keras_bn(blk.downsample[0].out_channels, 1.001e-5,
                                                  f"{name}/shortcut/BatchNorm"))

    def forward(self, x):
        y = super().forward(self._input(x))
        if not self.include_top:
            return self._output(y)
        return self.softmax(y) if hasattr(self, "softmax") else y

    def backward(self, grad_out):
        g = self._grad_in(grad_out)
        if hasattr(self, "softmax"):
            g = self.softmax.backward(g)
        return self._grad_out(super().backward(g))


# What each builder's keywords mean: with_arguments appends the lines for the ones a builder takes.
ARGUMENTS = {
    "widths": "each stage's bottleneck width; the stages' outputs are 4 times as wide",
    "num_classes": "outputs of the classifier (ImageNet: 1000)",
    "include_top": "False: no average pool and no classifier; the model returns its last feature map",
    "classifier_activation": "\"softmax\": probabilities, as Keras's models; None: logits (what a loss "
                             "such as CrossEntropyLoss takes)",
    "in_channels": "channels of the input images (3: RGB)",
    "data_format": "\"channels_first\": batches (N, C, H, W), minires's and PyTorch's layout; "
                   "\"channels_last\": (N, H, W, C), Keras's",
    "preprocessing": "what minires.predict does to an image first: \"tf\" (x / 127.5 - 1) or \"caffe\" "
                     "(BGR, minus the ImageNet mean); see minires/predict/preprocess_keras.py",
}


@with_arguments(ARGUMENTS)
def tf_resnet34(*, num_classes=1000, include_top=True, classifier_activation="softmax", in_channels=3,
                data_format="channels_first", preprocessing="tf"):
    """The seed's TensorFlow ResNet-34: torchvision's net (basic blocks), TensorFlow's padding and names.

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 512 channels at H/32 x W/32 rounded up, same layout.

        >>> model = tf_resnet34(include_top=False)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 512, 2, 2)
    """
    return TFResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top,
                    classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format,
                    preprocessing=preprocessing)


@with_arguments(ARGUMENTS)
def tf_resnet50(*, num_classes=1000, include_top=True, classifier_activation="softmax", in_channels=3,
                data_format="channels_first", preprocessing="tf"):
    """The seed's TensorFlow ResNet-50: torchvision's net (stride on the 3x3), TensorFlow's padding and names.

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 2048 channels at H/32 x W/32 rounded up, same layout.

        >>> model = tf_resnet50(num_classes=10, data_format="channels_last")
        >>> model(np.zeros((2, 64, 64, 3), np.float32)).shape
        (2, 10)
    """
    return TFResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, include_top=include_top,
                    classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format,
                    preprocessing=preprocessing)


@with_arguments(ARGUMENTS)
def tf_resnet101(*, num_classes=1000, include_top=True, classifier_activation="softmax", in_channels=3,
                 data_format="channels_first", preprocessing="tf"):
    """The seed's TensorFlow ResNet-101: torchvision's net (stride on the 3x3), TensorFlow's padding and names.

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 2048 channels at H/32 x W/32 rounded up, same layout.

        >>> model = tf_resnet101(num_classes=10, classifier_activation=None)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return TFResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, include_top=include_top,
                    classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format,
                    preprocessing=preprocessing)


@with_arguments(ARGUMENTS)
def keras_resnet50(*, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                   classifier_activation="softmax", in_channels=3, data_format="channels_first"):
    """keras.applications.ResNet50: the paper's v1 (stride on the first 1x1), 25,636,712 Keras parameters.

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 4 * widths[-1] channels at H/32 x W/32 rounded up, same layout.

        >>> model = keras_resnet50(num_classes=10, data_format="channels_last")
        >>> model(np.zeros((2, 64, 64, 3), np.float32)).shape
        (2, 10)
    """
    return KerasResNet(1, [3, 4, 6, 3], widths=widths, num_classes=num_classes, include_top=include_top,
                       classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format)


@with_arguments(ARGUMENTS)
def keras_resnet101(*, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                    classifier_activation="softmax", in_channels=3, data_format="channels_first"):
    """keras.applications.ResNet101: the paper's v1 (stride on the first 1x1).

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 4 * widths[-1] channels at H/32 x W/32 rounded up, same layout.

        >>> model = keras_resnet101(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return KerasResNet(1, [3, 4, 23, 3], widths=widths, num_classes=num_classes, include_top=include_top,
                       classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format)


@with_arguments(ARGUMENTS)
def keras_resnet152(*, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                    classifier_activation="softmax", in_channels=3, data_format="channels_first"):
    """keras.applications.ResNet152: the paper's v1 (stride on the first 1x1).

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 4 * widths[-1] channels at H/32 x W/32 rounded up, same layout.

        >>> model = keras_resnet152(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return KerasResNet(1, [3, 8, 36, 3], widths=widths, num_classes=num_classes, include_top=include_top,
                       classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format)


@with_arguments(ARGUMENTS)
def keras_resnet50v2(*, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                     classifier_activation="softmax", in_channels=3, data_format="channels_first"):
    """keras.applications.ResNet50V2: pre-activation bottlenecks (He et al., 2016).

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 4 * widths[-1] channels at H/32 x W/32 rounded up, same layout.

        >>> model = keras_resnet50v2(include_top=False, data_format="channels_last")
        >>> model(np.zeros((2, 64, 64, 3), np.float32)).shape
        (2, 2, 2, 2048)
    """
    return KerasResNet(2, [3, 4, 6, 3], widths=widths, num_classes=num_classes, include_top=include_top,
                       classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format)


@with_arguments(ARGUMENTS)
def keras_resnet101v2(*, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                      classifier_activation="softmax", in_channels=3, data_format="channels_first"):
    """keras.applications.ResNet101V2: pre-activation bottlenecks (He et al., 2016).

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 4 * widths[-1] channels at H/32 x W/32 rounded up, same layout.

        >>> model = keras_resnet101v2(num_classes=10, classifier_activation=None)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return KerasResNet(2, [3, 4, 23, 3], widths=widths, num_classes=num_classes, include_top=include_top,
                       classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format)


@with_arguments(ARGUMENTS)
def keras_resnet152v2(*, widths=(64, 128, 256, 512), num_classes=1000, include_top=True,
                      classifier_activation="softmax", in_channels=3, data_format="channels_first"):
    """keras.applications.ResNet152V2: pre-activation bottlenecks (He et al., 2016).

    x (N, in_channels, H, W) (channels-last: (N, H, W, in_channels)) -> probabilities (N, num_classes);
    ``include_top=False``: the feature map, 4 * widths[-1] channels at H/32 x W/32 rounded up, same layout.

        >>> model = keras_resnet152v2(num_classes=10)
        >>> model(np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 10)
    """
    return KerasResNet(2, [3, 8, 36, 3], widths=widths, num_classes=num_classes, include_top=include_top,
                       classifier_activation=classifier_activation, in_channels=in_channels, data_format=data_format)


KERAS_MODELS = {f.__name__: f for f in (
    tf_resnet34, tf_resnet50, tf_resnet101, keras_resnet50, keras_resnet101, keras_resnet152,
    keras_resnet50v2, keras_resnet101v2, keras_resnet152v2)}
