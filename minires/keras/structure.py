"""The tutorial's own TensorFlow files, whose layer names were lost: matched by structure.

The seed tutorial's TensorFlow ResNet (``tools/seed_tf_resnet.py``, as written) builds its
blocks as subclassed layers whose ``__init__`` calls ``super().__init__()`` without
``**kwargs``, so the ``name="unit_1"`` its ``_make_layer`` passes never arrives. What the
files hold instead of ``block1/unit_1/conv1``:

    Keras 2 .h5       group 'block1', weight 'basic_block/conv2d/kernel:0' (the next model built
                      in the same session: 'basic_block_16/conv2d_36/kernel:0')
    TF checkpoint     'layer_with_weights-2/layer_with_weights-0/conv1/kernel/.ATTRIBUTES/VARIABLE_VALUE'
    Keras 3 .weights.h5  'layers/sequential/layers/basic_block/conv1/vars/0'

None of those is the tutorial's name, and the Keras 2 ones change with what ran before. But
the order in which Keras *tracks* the layers is fixed by the code: a model's layers as they
are added, a block's in the order its ``__init__`` assigns them to attributes. So: the stem's
conv and batch norm, then each stage's units (each: conv1, bn1, conv2, bn2[, conv3, bn3], and
``downsample``, the shortcut's conv and batch norm: built before its block, in ``_make_layer``,
but assigned last), then the classifier. That is also the order of minires's modules
(``model.keras_layers()``), so the file's layers, put in tracking order, pair with the model's
one by one. Each format keeps that order in its own way:

* Keras 2 ``.h5``: ``layer_names`` and each group's ``weight_names`` list layers as they are
  tracked (trainable weights first, then the moving statistics of the same layers);
* the checkpoint: ``layer_with_weights-N`` numbers the layers that hold weights, in order, and
  the blocks' own layers appear under their Python attribute names (``conv1``, ``bn1``, ...);
* Keras 3: a container names its layers after their class, numbered in order (``sequential``,
  ``sequential_1`` ...; ``basic_block``, ``basic_block_1`` ...), a block's layers after their
  attribute names.

:func:`tracking_key` sorts such names back into tracking order; :func:`match_by_tracking_order`
pairs the result with the model, checking the kind (convolution, batch norm, dense) of every
pair before any shape is compared, so a file of another depth is refused with what differs.
"""
import re

import numpy as np

from ..nn import BatchNorm2d, Conv2d, Linear
from ..weights.common import WeightsError

# The tutorial's blocks assign their layers in this order (BasicBlock / Bottlenect.__init__).
BLOCK_ATTRIBUTES = {"conv1": 0, "bn1": 1, "conv2": 2, "bn2": 3, "conv3": 4, "bn3": 5, "downsample": 6}
# Keras 3 names a container's layers after their class; the tutorial adds, at the top, the stem's
# conv and batch norm, the four stages (Sequential), the classifier -- and in a shortcut, conv then norm.
CLASS_ORDER = {"conv2d": 0, "batch_normalization": 1, "sequential": 2, "dense": 3}
CONV_COUNTS = {36: "tf_resnet34", 53: "tf_resnet50", 104: "tf_resnet101"}   # 1 + 2 or 3 per unit + 3 or 4 shortcuts


def tracking_key(part):
    """Sort key of one part of a layer's path that puts siblings in the order Keras tracks them.

    ``layer_with_weights-12`` -> 12th; ``bn1`` -> after ``conv1``; ``sequential_3`` -> after
    ``sequential_2`` (numbers compared as numbers: ``basic_block_10`` after ``basic_block_9``).
    """
    if part in BLOCK_ATTRIBUTES:
        return (0, BLOCK_ATTRIBUTES[part], 0, "")
    m = re.fullmatch(r"(layer_with_weights-|layer-)(\d+)", part)
    if m:
        return (1, 0, int(m.group(2)), m.group(1))
    m = re.fullmatch(r"(.*?)(?:_(\d+))?", part)
    base = m.group(1)
    return (2, CLASS_ORDER.get(base, len(CLASS_ORDER)), int(m.group(2) or 0), base)


# ------------------------------------------------------------------ TensorFlow checkpoints
VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointTensor:
    """One checkpoint entry, listed but not read: ``shape``, ``dtype``, ``read(dtype)``."""

    def __init__(self, ckpt, key):
        self.ckpt, self.key = ckpt, key
        entry = ckpt.entries[key]
        self.shape = entry.shape
        self.dtype = np.dtype(object) if entry.dtype is None else entry.dtype   # a string tensor is no weight

    def read(self, dtype):
        with np.errstate(over="ignore", invalid="ignore"):
            return self.ckpt.read(self.key).astype(dtype, copy=False)


def checkpoint_layers(ckpt):
    """{layer path: [(role, CheckpointTensor)]} of an open :class:`~.tf_checkpoint.TFCheckpoint`, in tracking order.

    Keras's variables end in ``/.ATTRIBUTES/VARIABLE_VALUE``; the optimizer's state (``optimizer/``,
    ``.OPTIMIZER_SLOT``), ``save_counter`` and the object graph are not weights and are left out.
    """
    layers = {}
    for key in ckpt.entries:
        if not key.endswith(VALUE) or key.startswith(("optimizer/", "save_counter/")) or ".OPTIMIZER_SLOT" in key:
            continue
        path, _, role = key[:-len(VALUE)].rpartition("/")
        if path:
            layers.setdefault(path, []).append((role, CheckpointTensor(ckpt, key)))
    order = sorted(layers, key=lambda p: [tracking_key(part) for part in p.split("/")])
    return {path: layers[path] for path in order}


# ------------------------------------------------------------------ pairing by tracking order
def kind_of_items(items):
    """'conv', 'batch norm' or 'dense' from a layer's variables (their number and ranks), else '?'."""
    ranks = sorted(len(t.shape) for _, t in items)      # a checkpoint lists 'bias' before 'kernel'
    if ranks in ([4], [1, 4]):
        return "conv"
    if ranks == [1, 1, 1, 1]:
        return "batch norm"
    if ranks in ([2], [1, 2]):
        return "dense"
    return "other"


def kind_of_module(module):
    return ("conv" if isinstance(module, Conv2d) else "batch norm" if isinstance(module, BatchNorm2d)
            else "dense" if isinstance(module, Linear) else type(module).__name__)


def _counts(kinds):
    return ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                     for k in ("conv", "batch norm", "dense") if kinds.count(k))


def guess_by_structure(layers):
    """The tutorial's model a tracking-ordered {name: items} holds, by its number of convolutions, or None."""
    kinds = [kind_of_items(items) for items in layers.values()]
    if kinds[:2] != ["conv", "batch norm"] or kinds[-1:] != ["dense"]:
        return None
    return CONV_COUNTS.get(kinds.count("conv"))


def match_by_tracking_order(model, layers):
    """Pair a file's layers (in tracking order) with ``model.keras_layers()`` one by one.

    Returns [(model's name, module, file's name, items)]; every pair is of the same kind, else a
    WeightsError says how the file and the model differ. Shapes are compared by the caller.
    """
    want = model.keras_layers()
    got = list(layers.items())
    want_kinds = [kind_of_module(m) for _, m in want]
    got_kinds = [kind_of_items(items) for _, items in got]
    if want_kinds != got_kinds:
        first = next((i for i, (a, b) in enumerate(zip(want_kinds, got_kinds)) if a != b), min(len(want), len(got)))
        where = (f"; the first difference: the model's {want[first][0]} is a {want_kinds[first]}, the file's "
                 f"layer {first + 1} ({got[first][0]}) a {got_kinds[first]}"
                 if first < min(len(want), len(got)) else "")
        guess = guess_by_structure(layers)
        raise WeightsError(
            f"its layer names are not the tutorial's (TensorFlow drops them in the tutorial's blocks), so it "
            f"was matched by the order Keras tracks the tutorial's layers, and that structure differs: "
            f"the file holds {_counts(got_kinds)}, this {type(model).__name__} has {_counts(want_kinds)}"
            + (f" (the file looks like {guess}'s)" if guess else "") + where)
    return [(name, module, fname, items) for (name, module), (fname, items) in zip(want, got)]
