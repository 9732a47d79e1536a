"""Keras weight files without TensorFlow: HDF5 (Keras 2's ``.h5``, Keras 3's ``.weights.h5``) and
TensorFlow checkpoints (``save_weights("x.ckpt")``).

Three layouts (HDF5 read with h5py: ``pip install ".[keras]"``; checkpoints with NumPy alone):

* legacy HDF5 (Keras 1/2, and keras.applications' published ``*_weights_tf_dim_ordering_tf_kernels.h5``):
  the root (or ``model_weights`` in a whole-model ``.h5``) has the attribute ``layer_names``;
  each layer's group has ``weight_names`` (``conv1_conv/kernel:0`` ...), each the path of a dataset
  inside that group. A model inside the model (the tutorial's stages are ``Sequential``) is one
  group whose weight names have several prefixes: one layer per prefix, in the order listed.
* Keras 3 ``.weights.h5``: ``layers/<group>/vars/0, 1, ...`` in the layer's own order (a conv:
  kernel, bias; a batch norm: gamma, beta, moving_mean, moving_variance); the group is named
  after the layer, or (newer Keras 3) after its class with the layer's name in ``vars.attrs["name"]``;
  a layer made of layers holds theirs under ``layers/`` or under their attribute names.
* TensorFlow checkpoint (Keras 2's default for ``save_weights``; :mod:`.tf_checkpoint`):
  ``layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`` ... (:mod:`.keras_structure`).

Mapping to minires (every module of a Keras-flavoured model carries ``keras_name``):

    Conv2D kernel (KH, KW, C_in, C_out)  ->  Conv2d weight (C_out, C_in, KH, KW)   transpose(3, 2, 0, 1)
    Dense kernel (in, out)               ->  Linear weight (out, in)              transpose
    BatchNormalization gamma, beta, moving_mean, moving_variance -> weight, bias, running_mean, running_var

Layers are paired with the model's by name; where a file of the seed tutorial's own code lost
the names (its blocks drop ``name=``), by the order Keras tracks them (:mod:`.keras_structure`).

The file is untrusted: it is read under :mod:`.hdf5`'s rules (nothing outside the file, no
links, bounded decoding) or :mod:`.tf_checkpoint`'s, every dataset's dtype and shape is
checked against the model *before* it is read (so reading is bounded by the model's size),
every weight must be finite in the model's dtype, and a file for another architecture is
refused naming what is missing and what is extra, or how its structure differs.
"""
import contextlib
import os
import re

import numpy as np

from ..nn import BatchNorm2d, Conv2d, Linear
from ..weights.common import WeightsError, open_regular_file
from ..weights.hdf5 import HDF5_MAGIC, MAX_DEPTH, Tensor, child, children, guarded, memory_cap, open_hdf5, string_list
from ..weights.tf_checkpoint import TFCheckpoint, resolve_checkpoint
from .structure import checkpoint_layers, guess_by_structure, match_by_tracking_order, tracking_key

MAX_LAYERS = 1_500           # keras.applications' ResNet-152 has 311 layers with weights (over 500 in all)
MAX_GROUPS = 4_000           # groups walked in a Keras 3 file: the tutorial's ResNet-101 has 653


def is_hdf5(path):
    """Whether ``path`` starts with HDF5's signature (a FIFO, device or directory is a WeightsError)."""
    with open_regular_file(path) as f:
        return f.read(8) == HDF5_MAGIC


def is_tf_checkpoint(path):
    """Whether ``path`` names a TensorFlow checkpoint: its prefix (``x.ckpt``), its ``.index``, a data
    shard, or a folder (or its ``checkpoint`` file) that names one. Nothing is read but file names."""
    path = os.fspath(path)
    if os.path.isfile(path) and not path.endswith(".index") and os.path.basename(path) != "checkpoint" \
            and ".data-" not in os.path.basename(path):
        return False
    try:
        resolve_checkpoint(path)
    except (FileNotFoundError, WeightsError):
        return False
    return True


def _role(weight_name):
    """'conv1_bn/moving_mean:0' -> 'moving_mean'."""
    return re.sub(r":\d+$", "", weight_name.rsplit("/", 1)[-1])


class open_keras_file:
    """``with open_keras_file(path) as (layout, layers):`` the file's layers, in the file's order, unread.

    layout: 'legacy', 'keras3' or 'tf-checkpoint'; layers: {name: [(role, tensor)]}, each tensor
    with ``shape``, ``dtype`` and ``read(dtype)``. HDF5 is read under :mod:`.hdf5`'s rules
    (nothing outside the file, hard links only, no external or virtual storage, bounded
    decoding), checkpoints under :mod:`.tf_checkpoint`'s; every failure is a ``WeightsError``.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._stack = None

    def __enter__(self):
        with contextlib.ExitStack() as stack:
            stack.enter_context(guarded(self.path))
            if is_tf_checkpoint(self.path):
                result = "tf-checkpoint", checkpoint_layers(stack.enter_context(TFCheckpoint(self.path)))
            else:
                f = stack.enter_context(open_hdf5(self.path))
                with memory_cap((256 << 20) + 2 * os.path.getsize(self.path)):      # names only: no values read here
                    result = self._layers(f)
            self._stack = stack.pop_all()
        return result

    def __exit__(self, *exc):
        if self._stack is not None:
            self._stack.close()

    def _layers(self, f):
        root = f                                  # (never `name in group`: h5py follows links to answer it)
        if "layer_names" not in root.attrs and child(f, "model_weights", "model_weights") is not None:
            root = child(f, "model_weights", "model_weights")   # a whole-model .h5 (model.save)
        names = string_list(root, "layer_names", "layer_names", MAX_LAYERS)
        if names is not None:
            return "legacy", _legacy_layers(root, names)
        group = child(root, "layers", "layers")
        if group is not None and hasattr(group, "keys"):
            layers = {}
            _keras3_layers(group, "", layers, [0])
            return "keras3", layers
        raise WeightsError("neither a legacy Keras weights file (no 'layer_names' attribute) nor a Keras 3 "
                           ".weights.h5 (no 'layers' group)")


def _legacy_layers(root, names):
    """Keras 1/2: ``layer_names`` on the root, ``weight_names`` on each layer's group."""
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise WeightsError(f"layer_names lists {twice!r} more than once; Keras names each layer once")
    layers = {}
    for name in names:
        group = child(root, name, f"layer {name!r}")
        if group is None or not hasattr(group, "keys"):
            raise WeightsError(f"layer_names lists {name!r} but the file has no group of that name")
        weight_names = string_list(group, "weight_names", f"layer {name!r}") or []
        by_prefix = {}                     # a model inside the model: one layer per prefix, as listed
        for w in weight_names:
            ds = child(group, w, f"layer {name!r} weight {w!r}")
            if ds is None:
                raise WeightsError(f"layer {name!r} lists weight {w!r} but holds no such dataset")
            prefix = w.rsplit("/", 1)[0] if "/" in w else ""
            by_prefix.setdefault(prefix, []).append((_role(w), Tensor(ds, f"layer {name!r} weight {w!r}")))
        if len(by_prefix) == 1:
            layers[name] = next(iter(by_prefix.values()))
        else:
            layers.update({f"{name}/{prefix}": items for prefix, items in by_prefix.items()})
    return layers


def _keras3_layers(group, parent, layers, visited, depth=0, skip=()):
    """Keras 3: each layer's group holds ``vars/0, 1, ...`` (its own variables, in its order) and, for a
    layer made of layers, theirs: under ``layers/`` for a Functional or Sequential model, under
    their attribute names (``conv1``, ``bn1``, ``downsample``) for a subclassed layer such as the
    tutorial's blocks. Walked depth first, siblings in tracking order (:func:`.tracking_key`);
    a top-level layer is named as its ``vars.attrs["name"]`` says, a nested one by its path."""
    if depth > MAX_DEPTH:
        raise WeightsError(f"layers nested more than {MAX_DEPTH} deep (at {parent[:80]!r}...)")
    for gname, sub in sorted(children(group, parent or "layers", skip), key=lambda c: tracking_key(c[0])):
        if not hasattr(sub, "keys"):
            continue
        visited[0] += 1
        if visited[0] > MAX_GROUPS:
            raise WeightsError(f"more than {MAX_GROUPS} layer groups; refusing to walk further")
        where = f"{parent}/{gname}" if parent else gname
        vars_ = child(sub, "vars", where)
        if not hasattr(vars_, "keys"):
            vars_ = None
        name = where
        if vars_ is not None and not parent:
            name = (string_list(vars_, "name", f"layers/{gname}/vars", 1) or [gname])[0]
        if vars_ is not None and len(vars_):
            if len(vars_) > 8:
                raise WeightsError(f"layers/{where}/vars: {len(vars_)} variables; a Keras layer has at most 8")
            keys = sorted(vars_.keys(), key=lambda k: int(k) if k.isdigit() else -1)
            if not all(k.isdigit() for k in keys) or len(keys) > 8:
                raise WeightsError(f"layers/{where}/vars: expected datasets 0, 1, ..., got {keys[:8]}")
            if name in layers:
                raise WeightsError(f"two layers named {name!r}")
            layers[name] = [(k, Tensor(child(vars_, k, f"layers/{where}/vars/{k}"), f"layers/{where}/vars/{k}"))
                            for k in keys]
        inner = child(sub, "layers", where)                       # a Functional or Sequential model
        if hasattr(inner, "keys"):
            _keras3_layers(inner, name, layers, visited, depth + 1)
        if any(n not in ("vars", "layers") for n in sub):        # a subclassed layer's attribute layers
            _keras3_layers(sub, name, layers, visited, depth + 1, skip=("vars", "layers"))


def guess_keras_model(layer_names):
    """The minires model name a set of Keras layer names belongs to, or None.

    keras.applications: 'conv1_conv', v2 if 'post_bn' is there; depth from the number of
    conv4 (and conv3) blocks. The seed's TensorFlow nets: 'block1/unit_1/conv1' (or its
    '_'-spelled twin), depth from block3's units and from conv3 (bottleneck) being present.
    """
    names = set(layer_names)
    if "conv1_conv" in names:
        blocks = lambda s: len({m.group(1) for n in names for m in [re.match(rf"conv{s}_block(\d+)_", n)] if m})
        depth = {(4, 6): 50, (4, 23): 101, (8, 36): 152}.get((blocks(3), blocks(4)))
        if depth is None:
            return None
        return f"keras_resnet{depth}" + ("v2" if "post_bn" in names else "")
    flat = {n.replace("/", "_") for n in names}
    if "conv1" in flat and any(n.startswith("block1_unit_1_") for n in flat):
        units = len({m.group(1) for n in flat for m in [re.match(r"block3_unit_(\d+)_", n)] if m})
        bottleneck = any(n.startswith("block1_unit_1_conv3") for n in flat)
        return {(False, 6): "tf_resnet34", (True, 6): "tf_resnet50", (True, 23): "tf_resnet101"}.get((bottleneck, units))
    return None


def _expected(module, name):
    """[(role, minires array, transpose)] a module takes from its Keras layer, in Keras's order."""
    if isinstance(module, BatchNorm2d):
        return [("gamma", module.weight.data, None), ("beta", module.bias.data, None),
                ("moving_mean", module.running_mean, None), ("moving_variance", module.running_var, None)]
    if isinstance(module, Conv2d):
        out = [("kernel", module.weight.data, (3, 2, 0, 1))]      # HWIO file -> OIHW array
        return out + ([("bias", module.bias.data, None)] if module.bias is not None else [])
    if isinstance(module, Linear):
        out = [("kernel", module.weight.data, (1, 0))]
        return out + ([("bias", module.bias.data, None)] if module.bias is not None else [])
    raise TypeError(f"{name}: no Keras mapping for {type(module).__name__}")


def keras_state_dict(model, path):
    """Read ``path`` for ``model`` (a Keras-flavoured minires model) -> {minires key: array}.

    Every layer of the model must be in the file with the right shapes, and the file may hold
    no other layer with weights; otherwise a WeightsError says what does not fit (and, where it
    can tell, which model the file is for).
    """
    path = os.fspath(path)
    with open_keras_file(path) as (layout, layers):
        try:
            return state_dict_from_keras(model, layers)
        except WeightsError as e:
            raise WeightsError(f"{path}: {e}") from e


def match_layers(model, layers):
    """[(model's layer name, module, file's layer name, items)] for every layer of ``model``.

    By name: the seed's '/' names and Keras 3's '_'-spelled ones are the same layer. Where the
    names do not pair up and the model is the tutorial's (``matches_by_tracking_order``), by the
    order Keras tracks the tutorial's layers (:func:`.match_by_tracking_order`), unless the
    names say the file is another model's.
    """
    want = model.keras_layers()
    have = {n.replace("/", "_"): (n, items) for n, items in layers.items()}
    want_flat = {n.replace("/", "_") for n, _ in want}
    missing = [n for n, _ in want if n.replace("/", "_") not in have]
    unexpected = [n for k, (n, _) in have.items() if k not in want_flat]
    if not missing and not unexpected:
        return [(name, module) + have[name.replace("/", "_")] for name, module in want]
    guess = guess_keras_model(layers)
    if getattr(model, "matches_by_tracking_order", False) and (guess is None or guess.startswith("tf_")):
        return match_by_tracking_order(model, layers)
    guess = guess or guess_by_structure(layers)
    hint = f" (the file looks like {guess}'s)" if guess else ""
    raise WeightsError(
        f"the weights are for another architecture than this {type(model).__name__}{hint}: "
        + (f"{len(missing)} of its layers missing from the file (e.g. {', '.join(missing[:3])})" if missing else "")
        + ("; " if missing and unexpected else "")
        + (f"{len(unexpected)} layers in the file it does not have (e.g. {', '.join(unexpected[:3])})"
           if unexpected else ""))


def state_dict_from_keras(model, layers):
    """{Keras layer name: [(role, array or tensor)]} -> {minires key: array} for ``model``.

    Roles are 'kernel', 'bias', 'gamma' ... (legacy files, checkpoints, and arrays built in
    memory) or the variables' indices in Keras's order (Keras 3 files). Layers are paired by
    :func:`match_layers`; every shape and dtype is checked before any value is read.
    """
    keys = {id(m): k for k, m in model.named_modules()}
    plan = []                                      # every shape checked before any value is read
    for name, module, fname, items in match_layers(model, layers):
        expected = _expected(module, name)
        if len(items) != len(expected):
            raise WeightsError(f"layer {fname!r} holds {len(items)} weights, the model's {name} needs "
                               f"{len(expected)} ({', '.join(r for r, _, _ in expected)})")
        roles = [r for r, _ in items]
        if sorted(roles) == sorted(r for r, _, _ in expected):
            by_role = dict(items)
        else:                                      # Keras 3's '0', '1' ...: Keras's own order
            by_role = {r: ds for (r, _, _), (_, ds) in zip(expected, items)}
        prefix = keys[id(module)]
        for (role, target, axes), suffix in zip(expected, ("weight", "bias", "running_mean", "running_var")):
            ds = by_role[role]
            want_shape = target.shape if axes is None else tuple(target.shape[a] for a in np.argsort(axes))
            dtype = np.dtype(ds.dtype)
            which = f"layer {fname!r}" + (f" (the model's {name})" if fname.replace("/", "_") != name.replace("/", "_")
                                          else "")
            if tuple(ds.shape) != tuple(want_shape) or dtype.kind != "f" or dtype.itemsize > 8:
                raise WeightsError(f"{which} {role} has shape {tuple(ds.shape)} and dtype {dtype}, "
                                   f"the model needs {tuple(want_shape)} floats (another width or number of classes?)")
            plan.append((f"{prefix}.{suffix}", ds, target.dtype, axes, f"{which} {role}"))
        if hasattr(module, "num_batches_tracked"):    # Keras keeps no count: a fresh one
            plan.append((f"{prefix}.num_batches_tracked", None, None, None, None))
    state = {}
    for key, ds, dtype, axes, what in plan:
        if ds is None:
            state[key] = np.array(0, dtype=np.int64)
            continue
        value = _read(ds, dtype)
        if not np.all(np.isfinite(value)):
            bad = value.ravel()[~np.isfinite(value.ravel())][0]
            raise WeightsError(f"{what} (the model's {key}) holds non-finite values as {np.dtype(dtype)} "
                               f"(e.g. {bad}): a value too large for the model's dtype, or NaN/inf in the file")
        state[key] = np.ascontiguousarray(value if axes is None else value.transpose(axes))
    return state


def _read(ds, dtype):
    """A checked tensor's values as the model's ``dtype``: an HDF5 :class:`~.hdf5.Tensor` or an array."""
    if hasattr(ds, "read"):
        return ds.read(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(ds).astype(dtype)


def load_keras_weights(model, path):
    """Load a Keras weights file into ``model``; returns the model.

    ``path``: a legacy ``.h5``, a Keras 3 ``.weights.h5``, or a TensorFlow checkpoint as given to
    ``save_weights`` (``x.ckpt``; or its ``.index``, or a folder with a ``checkpoint`` file).
    All of it is loaded, or nothing (a WeightsError says why).
    """
    model.load_state_dict(keras_state_dict(model, path), strict=True)
    return model


def keras_file_info(path):
    """(model name or None, number of classes or None, how its layers pair with the model's:
    'names' or 'tracking order') of a Keras weights file or TensorFlow checkpoint."""
    with open_keras_file(path) as (layout, layers):
        name = guess_keras_model(layers)
        how = "names"
        if name is None:
            name = guess_by_structure(layers)
            how = "tracking order" if name else "names"
        top = layers.get("predictions") or layers.get("logits") or (list(layers.values())[-1] if layers else None)
        classes = None
        if top:
            kernel = [ds for role, ds in top if role in ("kernel", "0")]
            if kernel and len(kernel[0].shape) == 2:
                classes = int(kernel[0].shape[1])
    return name, classes, how
