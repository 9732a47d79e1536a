"""The seed tutorial's TensorFlow ResNet code under Keras 3: the least change that runs.

``tools/seed_tf_resnet.py`` is the tutorial's code as written; it runs under TensorFlow 2.21 with
tf-keras (Keras 2). Under Keras 3 (TensorFlow 2.21 without ``TF_USE_LEGACY_KERAS``, so that
``tensorflow.keras`` is Keras 3.15) it fails, first at ``conv1/BatchNorm`` and, with that fixed,
at the max pooling. ``load()`` reads that file's source text, applies the edits in ``EDITS`` (each
one must match exactly once, else it raises) and runs the result as a new module. Nothing else
changes: the slips (swapped width/height, ``Bottlenect``, the dropped ``name=`` of the blocks)
stay.

The edits, with the error Keras 3.15.1 gives without each (``check_edits()`` re-runs that proof:
for each edit it builds the network with all the other edits applied and checks it fails with
that message):

1. stem batch norm ``name="conv1/BatchNorm"`` -> ``"conv1_BatchNorm"``, and
2.-4. Bottlenect's ``name="conv1/BatchNorm"``, ``"conv2/BatchNorm"``, ``"conv3/BatchNorm"`` ->
   ``"conv1_BatchNorm"``, ``"conv2_BatchNorm"``, ``"conv3_BatchNorm"``::

       ValueError: Argument `name` must be a string and cannot contain character `/`.
       Received: name=conv1/BatchNorm (of type <class 'str'>)

   ('/' was Keras 2's name-scope separator; Keras 3 forbids it in any name. '_' is the least
   change and the spelling tools/make_keras_fixtures.py already uses.)
5. the stem's ``MaxPool2D(pool_size=3, strides=2, padding="SAME")`` -> ``padding="same"``::

       ValueError: Exception encountered when calling MaxPooling2D.call().
       Argument `padding` must be either 'valid' or 'same'. Received: padding=SAME

   (Keras 3's convolutions lower-case ``padding``, its pooling layers do not: the
   ``padding="SAME"`` of every Conv2D is accepted as written.)

Usage (in a Python whose ``tensorflow.keras`` is Keras 3)::

    import seed_tf_resnet_keras3
    seed = seed_tf_resnet_keras3.load()
    model = seed.resnet50(64, 64, num_classes=10)
"""
import os
import types

SEED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_tf_resnet.py")

# (old, new, which depths fail without it, the start of Keras 3's error message without it)
_NAME_ERROR = "Argument `name` must be a string and cannot contain character `/`. Received: name={}"
EDITS = [
    ('name="conv1/BatchNorm")(x)', 'name="conv1_BatchNorm")(x)', ("resnet34", "resnet50", "resnet101"),
     _NAME_ERROR.format("conv1/BatchNorm")),
    ('self.bn1 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv1/BatchNorm")',
     'self.bn1 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv1_BatchNorm")',
     ("resnet50", "resnet101"), _NAME_ERROR.format("conv1/BatchNorm")),
    ('self.bn2 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv2/BatchNorm")',
     'self.bn2 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv2_BatchNorm")',
     ("resnet50", "resnet101"), _NAME_ERROR.format("conv2/BatchNorm")),
    ('self.bn3 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv3/BatchNorm")',
     'self.bn3 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv3_BatchNorm")',
     ("resnet50", "resnet101"), _NAME_ERROR.format("conv3/BatchNorm")),
    ('layers.MaxPool2D(pool_size=3, strides=2, padding="SAME")(x)',
     'layers.MaxPool2D(pool_size=3, strides=2, padding="same")(x)', ("resnet34", "resnet50", "resnet101"),
     "Argument `padding` must be either 'valid' or 'same'. Received: padding=SAME"),
]


def keras3_source(skip=None):
    """The seed file's source with every edit applied (but the one numbered ``skip``, 0-based)."""
    with open(SEED_FILE, encoding="utf-8") as f:
        source = f.read()
    for i, (old, new, _, _) in enumerate(EDITS):
        if source.count(old) != 1:
            raise ValueError(f"edit {i + 1}: {old!r} occurs {source.count(old)} times in {SEED_FILE}, not once")
        if i != skip:
            source = source.replace(old, new)
    return source


def load(skip=None):
    """Run the edited source as a fresh module (its ``__main__`` demo does not run) and return it."""
    module = types.ModuleType("seed_tf_resnet_keras3_variant")
    module.__file__ = SEED_FILE
    exec(compile(keras3_source(skip), SEED_FILE + " (Keras 3 edits)", "exec"), module.__dict__)
    return module


def check_edits(size=64, num_classes=10):
    """Each edit is needed: without it (the others applied) Keras 3 refuses the listed depths with the
    listed message. Returns one line per (edit, depth) checked; raises AssertionError otherwise."""
    lines = []
    for i, (old, _, depths, message) in enumerate(EDITS):
        for depth in depths:
            try:
                getattr(load(skip=i), depth)(size, size, num_classes)
            except ValueError as e:
                assert message in str(e), f"edit {i + 1}, {depth}: unexpected error {e}"
                lines.append(f"edit {i + 1} needed for {depth}: {message}")
            else:
                raise AssertionError(f"edit {i + 1} ({old!r}) is not needed for {depth}")
    return lines
