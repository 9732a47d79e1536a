"""Write tests/fixtures/keras/tutorial/: the weights files the seed tutorial's own TensorFlow code writes.

TensorFlow is the oracle here, never a dependency of minires or its tests. One command (from the
repository root) does everything::

    python -m venv tools/.tfvenv
    tools/.tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 h5py
    tools/.tfvenv/bin/python tools/make_tutorial_files.py                 # resnet34 resnet50 resnet101
    tools/.tfvenv/bin/python tools/make_tutorial_files.py resnet34        # only some depths

The command itself imports no TensorFlow: for each depth it re-runs this file twice as a worker,
once with ``TF_USE_LEGACY_KERAS=1`` (``tensorflow.keras`` is tf-keras, Keras 2) and once without
it (``tensorflow.keras`` is Keras 3), each in a fresh process (TensorFlow picks its Keras at
import)::

    TF_USE_LEGACY_KERAS=1 python tools/make_tutorial_files.py --worker keras2 --depth resnet34 --dir D
    env -u TF_USE_LEGACY_KERAS python tools/make_tutorial_files.py --worker keras3 --depth resnet34 --dir D

then compresses what they wrote into the fixture folder and checks the sizes.

Each worker builds the tutorial's network (``tools/seed_tf_resnet.py``, the code as written, for
Keras 2; ``tools/seed_tf_resnet_keras3.py``'s edited copy for Keras 3) as
``resnetNN(SIZE, SIZE, num_classes=NUM_CLASSES)``: square, so the tutorial's width/height swap
does not matter. It sets every variable (checked: the set of variables assigned is exactly
``model.weights``) from ``weight_values`` below, by creation order, so both frameworks get the same
numbers; runs ``model(x, training=False)`` on a seeded (2, SIZE, SIZE, 3) batch; saves the
weights the ways the tutorial's readers would; loads each file back into a freshly built model
and checks the output is unchanged; and records what TensorFlow wrote.

**Creation order** is the order in which the tutorial's code constructs the layers: ``conv1``,
``conv1/BatchNorm``; then for block1..block4, for unit_1: the shortcut's ``conv1`` and
``BatchNorm`` if it has one (``_make_layer`` builds the shortcut before the block), then
``conv1``, ``conv1/BatchNorm``, ``conv2``, ``conv2/BatchNorm`` (``conv3``, ``conv3/BatchNorm`` for
Bottlenect), then unit_2, ...; last ``logits``. Each layer is named in ``expected.npz`` by its
*tutorial path*: the names the code gives, joined with '/': ``block2/unit_1/shortcut/conv1``,
``block2/unit_1/shortcut/BatchNorm``, ``block2/unit_1/conv3/BatchNorm`` (BasicBlock's layers have
no ``name=`` in the code; they get ``conv1``, ``conv1/BatchNorm``, ... by their attributes
``conv1``, ``bn1``, ..., as minires names them). The files do not carry these names: see the
``layout_*.json`` files for what they do carry.

**Values** (``weight_values``; float32; every draw from ``default_rng([SEED_WEIGHTS, i])``, i the
layer's index in creation order, batch norms included). Kernel j (the j-th conv or dense layer,
counting from 0) repeats with its own prime period ``P_j`` (the primes from FIRST_PERIOD = 97 on:
97, 101, 103, ...; ``layer_periods`` in expected.npz): in TensorFlow's layout (HWIO, or (in, out)
for the dense layer), flattened in C order, entry k is ``scale * (pattern[(k + phase) % P_j] +
offset)``, ``pattern`` a standard-normal vector of length ``P_j`` normalised to mean 0 and std 1,
``scale = gain * U(0.8, 1.2) / sqrt(fan_in)`` (gain sqrt(2) for convs, DENSE_GAIN = 2 for
``logits``), ``offset = U(-OFFSET, OFFSET)`` (OFFSET = 0.01), ``phase`` an integer in [0, P_j).
So xz stores each kernel in about one period (the files compress 180-500x, most of what remains
being the random batch norms), while swapped layers of the same shape, or a kernel read in the
wrong axis order, change the output (tried: 0.07-0.4 in the probabilities). Why one period per
layer: with a single period for all layers, output channels c and c+P of a layer are equal up to
its batch norm and the next layer's weights repeat with the same period, so the sums add up
coherently and resnet50's eval-mode logits reached +-100 (one-hot softmax); different primes
keep the activations O(1) at every depth. Output channels c and c+P_j of one layer still share a
filter (they differ by their batch norm). Batch norms: gamma U(0.5, 1.5), times BRANCH_GAIN = 0.2
for the last batch norm of each residual branch (conv2/BatchNorm of BasicBlock, conv3/BatchNorm of
Bottlenect), beta U(-0.2, 0.2), moving_mean U(-0.2, 0.2), moving_variance U(0.5, 1.5). The dense
bias U(-0.1, 0.1). The input: ``default_rng(SEED_INPUT).uniform(0, 1, (2, SIZE, SIZE, 3))``.

**Written** (per depth, in ``tests/fixtures/keras/tutorial/<depth>/``; ``X.xz`` is Python's
``lzma.compress(..., preset=9)`` of the file ``X`` TensorFlow wrote, under the name TensorFlow gave it):

==========================================  ===========================================================
``keras2.h5.xz``                            tf-keras ``model.save_weights("keras2.h5")``
``keras2.ckpt.index.xz``,                   tf-keras ``model.save_weights("keras2.ckpt")`` (a TensorFlow
``keras2.ckpt.data-00000-of-00001.xz``,     checkpoint) and the ``checkpoint`` file TensorFlow writes
``checkpoint`` (plain text, as written)     beside it (``model_checkpoint_path: "keras2.ckpt"``)
``keras3.weights.h5.xz``                    Keras 3 ``model.save_weights("keras3.weights.h5")``
``layout_keras2_h5.json``,                  what each HDF5 file holds (``h5_layout``): root and group
``layout_keras3_weights_h5.json``           attributes (Keras 2: ``layer_names``, ``weight_names``),
                                            every dataset's path, shape, dtype, in h5py's order
``layout_keras2_ckpt.json``                 every checkpoint key with its dtype and shape, in the
                                            index's order (``tf.train.list_variables``)
``expected.npz``                            see below
==========================================  ===========================================================

In the three layouts every weight entry also has ``holds``: the tutorial path and role of the
weight it holds (``block2/unit_1/shortcut/BatchNorm/moving_variance``), found by comparing values
(all weights differ), each weight exactly once: the mapping a reader must reproduce.

``expected.npz`` (``allow_pickle=False``): ``input`` (2, SIZE, SIZE, 3) float32 NHWC;
``probs_keras2``, ``probs_keras3`` (2, NUM_CLASSES) float32, ``model(input, training=False)``
(the softmax output) of tf-keras and of Keras 3; ``bn_paths`` (B,) str, the tutorial paths of the
batch norms in creation order; ``moving_mean``, ``moving_variance``: float32, all batch norms'
concatenated in that order, with ``bn_sizes`` (B,) int64 to split them
(``np.split(a, np.cumsum(bn_sizes)[:-1])``), read back from the Keras 2 model (the Keras 3 model's
are checked equal); ``epsilon`` (B,) float64 (1e-5; 1.001e-5 for the shortcuts); ``layer_paths``
(L,) str, ``layer_shapes`` (L, 4) int64 (padded with -1), ``layer_periods`` (L,) int64 (0 for
batch norms): every layer with weights in creation order, the shape of its first weight (kernel
or gamma) and its kernel's period; ``param_count`` int64 (``model.count_params()``); and the
settings ``depth``, ``num_classes``, ``size``, ``seed_weights``, ``seed_input``, ``first_period``,
``branch_gain``, ``offset``, ``dense_gain``, ``tensorflow_version``, ``keras2_version``,
``keras3_version``. ``weight_values`` rebuilds every weight from these.

The script prints each file's size before and after compression, the probabilities' spread and
the largest difference between Keras 2's and Keras 3's, and fails if the folder passes LIMIT_MB.
"""
import argparse
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
OUT = os.path.join(ROOT, "tests", "fixtures", "keras", "tutorial")
SEED_TEXTS = [os.path.join(r, "shared", "seed", "000_2c6f1a8f55a44b55.txt") for r in (ROOT, os.path.dirname(ROOT))]
SEED_LINES = (655, 785)   # the tutorial's TensorFlow code, 1-based, inclusive

DEPTHS = ("resnet34", "resnet50", "resnet101")
NUM_CLASSES, SIZE, BATCH = 10, 64, 2
SEED_WEIGHTS, SEED_INPUT = 0, 1
FIRST_PERIOD = 97         # the kernels' periods: the primes from 97 on, one per kernel, in creation order
BRANCH_GAIN = 0.2
OFFSET = 0.01              # kernels' offsets U(-OFFSET, OFFSET)
DENSE_GAIN = 2.0
LIMIT_MB = 8.0


# ----------------------------------------------------------------------------- values (numpy only)

def primes_from(start, count):
    """The first ``count`` primes >= ``start``."""
    out, n = [], start
    while len(out) < count:
        if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)):
            out.append(n)
        n += 1
    return out


def reference_input():
    return np.random.default_rng(SEED_INPUT).uniform(0.0, 1.0, (BATCH, SIZE, SIZE, 3)).astype(np.float32)


def weight_values(index, kind, shapes, last_bn_of_branch=False, period=None):
    """The values of layer ``index`` (creation order) of kind 'conv', 'bn' or 'dense', as a list of
    float32 arrays in the order of ``shapes``: kernel | gamma, beta, moving_mean, moving_variance |
    kernel, bias. A kernel repeats with the prime ``period``."""
    rng = np.random.default_rng([SEED_WEIGHTS, index])
    if kind in ("conv", "dense"):
        pat = rng.standard_normal(period)
        pat = (pat - pat.mean()) / pat.std()
        shape = shapes[0]
        fan_in = int(np.prod(shape[:-1]))
        gain = np.sqrt(2.0) if kind == "conv" else DENSE_GAIN
        scale = gain * rng.uniform(0.8, 1.2) / np.sqrt(fan_in)
        offset = rng.uniform(-OFFSET, OFFSET)
        phase = int(rng.integers(period))
        k = (np.arange(int(np.prod(shape))) + phase) % period
        kernel = (scale * (pat[k] + offset)).astype(np.float32).reshape(shape)
        if kind == "conv":
            return [kernel]
        return [kernel, rng.uniform(-0.1, 0.1, shapes[1]).astype(np.float32)]
    if kind == "bn":
        (n,) = shapes[0]
        gamma = rng.uniform(0.5, 1.5, n) * (BRANCH_GAIN if last_bn_of_branch else 1.0)
        beta = rng.uniform(-0.2, 0.2, n)
        mean = rng.uniform(-0.2, 0.2, n)
        var = rng.uniform(0.5, 1.5, n)
        return [a.astype(np.float32) for a in (gamma, beta, mean, var)]
    raise ValueError(kind)


# ----------------------------------------------------------------------------- layouts (h5py only)

def _attr(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_attr(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_attr(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def h5_layout(path, holds=None):
    """Everything an HDF5 weights file holds but the numbers, in file order: h5py's iteration order,
    which for these files (no tracked creation order) is each group's links sorted by name, depth
    first. ``groups``: every group's path and attributes (Keras 2: the root's ``layer_names``, each
    layer group's ``weight_names``); ``datasets``: every dataset's path, shape and dtype. For a Keras 2
    file also ``layer_names`` and ``weight_names`` ({layer: [names]}, the order Keras wrote them).
    Names with '/' are nested groups in HDF5: the layer ``conv1/BatchNorm`` is the group
    ``BatchNorm`` inside the group ``conv1``. With ``holds`` ({(shape, bytes): tutorial path/role},
    see ``value_index``), each dataset also says which weight it holds, found by its value; every
    weight must be found exactly once."""
    import h5py
    out = {"file": os.path.basename(path), "order": "h5py iteration order: links sorted by name, depth first",
           "groups": [], "datasets": []}
    with h5py.File(path, "r") as f:
        out["tracks_creation_order"] = bool(f.id.get_create_plist().get_link_creation_order())
        out["groups"].append({"path": "/", "attrs": {k: _attr(v) for k, v in f.attrs.items()}})

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                entry = {"path": name, "shape": list(obj.shape), "dtype": str(obj.dtype)}
                if holds is not None:
                    entry["holds"] = holds[value_key(obj[()])]
                out["datasets"].append(entry)
            else:
                out["groups"].append({"path": name, "attrs": {k: _attr(v) for k, v in obj.attrs.items()}})
        f.visititems(visit)
        if "layer_names" in f.attrs:
            out["layer_names"] = _attr(f.attrs["layer_names"])
            out["weight_names"] = {n: _attr(f[n].attrs["weight_names"]) for n in out["layer_names"]}
    out["n_datasets"] = len(out["datasets"])
    if holds is not None:
        found = sorted(d["holds"] for d in out["datasets"])
        assert found == sorted(holds.values()), f"{path}: not every weight found exactly once"
    return out


def value_key(array):
    array = np.asarray(array)
    return tuple(array.shape), array.astype(np.float32).tobytes()


def value_index(order):
    """{(shape, bytes): "tutorial path/role"} for every weight (all values differ: asserted)."""
    index = {}
    for path, layer, kind, _, _ in order:
        for var, role in zip(layer_variables(layer, kind), ROLES[kind]):
            key = value_key(var.numpy())
            assert key not in index, f"{path}/{role} has the same value as {index[key]}"
            index[key] = f"{path}/{role}"
    return index


# ----------------------------------------------------------------------------- worker (TensorFlow)

def check_seed_copy():
    """tools/seed_tf_resnet.py is the tutorial's lines 655-785 but for indentation and the __main__ guard."""
    found = [p for p in SEED_TEXTS if os.path.exists(p)]
    if not found:
        return "the tutorial's text (shared/seed/) is not here: the copy was not checked"
    with open(found[0], encoding="utf-8") as f:
        seed = f.read().splitlines()[SEED_LINES[0] - 1:SEED_LINES[1]]
    with open(os.path.join(TOOLS, "seed_tf_resnet.py"), encoding="utf-8") as f:
        ours = f.read().splitlines()
    ours = [line.lstrip(" ") for line in ours[ours.index("from tensorflow.keras import layers, Model, Sequential"):]]
    guard = 'if __name__ == "__main__":'
    assert ours.count(guard) == 1, "the __main__ guard is missing"
    ours.remove(guard)
    assert ours == seed, "tools/seed_tf_resnet.py differs from the tutorial beyond indentation and the guard"
    return f"tools/seed_tf_resnet.py = tutorial lines {SEED_LINES[0]}-{SEED_LINES[1]} (indentation, __main__ guard)"


def creation_order(model, keras3):
    """[(tutorial path, layer, kind, last_bn_of_branch)] in the order the tutorial's code creates them."""
    sep = "_" if keras3 else "/"
    out = [("conv1", model.get_layer("conv1"), "conv", False),
           ("conv1/BatchNorm", model.get_layer(f"conv1{sep}BatchNorm"), "bn", False)]
    for b in range(1, 5):
        for u, unit in enumerate(model.get_layer(f"block{b}").layers, 1):
            p = f"block{b}/unit_{u}"
            if unit.downsample is not None:
                conv, bn = unit.downsample.layers
                out += [(f"{p}/shortcut/conv1", conv, "conv", False), (f"{p}/shortcut/BatchNorm", bn, "bn", False)]
            n = 3 if hasattr(unit, "conv3") else 2
            for k in range(1, n + 1):
                out += [(f"{p}/conv{k}", getattr(unit, f"conv{k}"), "conv", False),
                        (f"{p}/conv{k}/BatchNorm", getattr(unit, f"bn{k}"), "bn", k == n)]
    out.append(("logits", model.get_layer("logits"), "dense", False))
    return out


ROLES = {"conv": ("kernel",), "bn": ("gamma", "beta", "moving_mean", "moving_variance"), "dense": ("kernel", "bias")}


def layer_variables(layer, kind):
    if kind == "conv":
        return [layer.kernel]
    if kind == "bn":
        return [layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance]
    return [layer.kernel, layer.bias]


def build(seed, depth, keras3):
    """The tutorial's network with every variable set; returns (model, creation order)."""
    model = getattr(seed, depth)(SIZE, SIZE, num_classes=NUM_CLASSES)
    order = creation_order(model, keras3)
    periods = iter(primes_from(FIRST_PERIOD, len(order)))
    assigned = []
    for i, (path, layer, kind, last) in enumerate(order):
        variables = layer_variables(layer, kind)
        period = next(periods) if kind != "bn" else 0
        values = weight_values(i, kind, [tuple(v.shape) for v in variables], last, period)
        order[i] = (path, layer, kind, last, period)
        for v, a in zip(variables, values):
            v.assign(a)
            assigned.append(v)
    ids = sorted(id(v) for v in assigned)
    assert ids == sorted(id(v) for v in model.weights) and len(set(ids)) == len(ids), \
        f"{len(assigned)} variables assigned, the model has {len(model.weights)}"
    return model, order


def worker(flavour, depth, folder):
    import tensorflow as tf
    keras3 = flavour == "keras3"
    keras = __import__("keras" if keras3 else "tf_keras")
    version = keras.__version__
    assert tf.keras.layers.Layer is keras.layers.Layer and version.startswith("3." if keras3 else "2."), \
        f"{flavour} worker: tensorflow.keras is not {keras.__name__} {version}"
    sys.path.insert(0, TOOLS)
    lines = []
    if keras3:
        import seed_tf_resnet_keras3
        seed = seed_tf_resnet_keras3.load()
    else:
        import seed_tf_resnet as seed
        lines.append(check_seed_copy())
    model, order = build(seed, depth, keras3)   # the process's first model: Keras's default names
    holds = value_index(order)
    x = reference_input()
    probs = model(x, training=False).numpy()
    files = ["keras3.weights.h5"] if keras3 else ["keras2.h5", "keras2.ckpt"]
    for name in files:
        model.save_weights(os.path.join(folder, name))
        fresh = getattr(seed, depth)(SIZE, SIZE, num_classes=NUM_CLASSES)
        fresh.load_weights(os.path.join(folder, name))
        again = fresh(x, training=False).numpy()
        assert np.array_equal(again, probs), f"{name}: a fresh model loaded from it gives other outputs"
        lines.append(f"{name}: reloaded into a fresh model, same output")
        if name.endswith(".h5"):
            layout = h5_layout(os.path.join(folder, name), holds)
            with open(os.path.join(folder, "layout_" + name.replace(".", "_") + ".json"), "w") as f:
                json.dump(layout, f, indent=1)
            lines.append(f"{name}: {layout['n_datasets']} datasets, each weight found once by its value")
    result = {"probs": probs, "count": np.int64(model.count_params())}
    bns = [(p, layer) for p, layer, kind, _, _ in order if kind == "bn"]
    result["bn_paths"] = np.array([p for p, _ in bns])
    for role in ("moving_mean", "moving_variance"):
        result[role] = np.concatenate([getattr(layer, role).numpy() for _, layer in bns])
    result["bn_sizes"] = np.array([layer.gamma.shape[0] for _, layer in bns], np.int64)
    result["epsilon"] = np.array([layer.epsilon for _, layer in bns], np.float64)
    result["layer_paths"] = np.array([p for p, _, _, _, _ in order])
    result["layer_periods"] = np.array([period for _, _, _, _, period in order], np.int64)
    result["layer_shapes"] = np.array([list(layer_variables(layer, kind)[0].shape) + [-1] * (4 - len(
        layer_variables(layer, kind)[0].shape)) for _, layer, kind, _, _ in order], np.int64)
    result["tensorflow_version"] = np.array(tf.__version__)
    result["keras_version"] = np.array(version)
    if not keras3:
        prefix = os.path.join(folder, "keras2.ckpt")
        reader = tf.train.load_checkpoint(prefix)
        dtypes = reader.get_variable_to_dtype_map()
        keys = [{"key": k, "dtype": dtypes[k].name, "shape": list(s)} for k, s in tf.train.list_variables(prefix)]
        for entry in keys:
            if entry["dtype"] == "float32":
                entry["holds"] = holds[value_key(reader.get_tensor(entry["key"]))]
        assert sorted(e["holds"] for e in keys if "holds" in e) == sorted(holds.values()), \
            "keras2.ckpt: not every weight found exactly once"
        lines.append(f"keras2.ckpt: {len(keys)} keys, each weight found once by its value")
        with open(os.path.join(folder, "layout_keras2_ckpt.json"), "w") as f:
            json.dump({"files": ["keras2.ckpt.index", "keras2.ckpt.data-00000-of-00001", "checkpoint"],
                       "order": "tf.train.list_variables: the index's order (keys sorted bytewise)",
                       "n_keys": len(keys), "keys": keys}, f, indent=1)
    np.savez(os.path.join(folder, f"{flavour}.npz"), **result)
    if keras3 and depth == "resnet50":   # after the files: it builds more models, which changes Keras's names
        lines += seed_tf_resnet_keras3.check_edits(SIZE, NUM_CLASSES)
    print("\n".join(f"  [{flavour}] {line}" for line in lines), flush=True)


# ----------------------------------------------------------------------------- driver (no TensorFlow)

def run_worker(flavour, depth, folder):
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    if flavour == "keras2":
        env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", flavour, "--depth", depth,
                    "--dir", folder], env=env, check=True)


def compress(src, dst):
    with open(src, "rb") as f:
        raw = f.read()
    with open(dst, "wb") as f:
        f.write(lzma.compress(raw, preset=9))
    return len(raw), os.path.getsize(dst)


def make(depth):
    t0 = time.time()
    out = os.path.join(OUT, depth)
    with tempfile.TemporaryDirectory() as tmp:
        for flavour in ("keras2", "keras3"):
            run_worker(flavour, depth, tmp)
        k2 = dict(np.load(os.path.join(tmp, "keras2.npz"), allow_pickle=False))
        k3 = dict(np.load(os.path.join(tmp, "keras3.npz"), allow_pickle=False))
        for key in ("bn_paths", "moving_mean", "moving_variance", "bn_sizes", "layer_paths",
                    "layer_shapes", "layer_periods", "count"):
            assert np.array_equal(k2[key], k3[key]), f"{depth}: Keras 2 and Keras 3 differ in {key}"
        assert np.allclose(k2["epsilon"], k3["epsilon"], rtol=1e-6, atol=0), f"{depth}: epsilons differ"
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        sizes = []
        for name in ("keras2.h5", "keras2.ckpt.index", "keras2.ckpt.data-00000-of-00001", "keras3.weights.h5"):
            sizes.append((name, *compress(os.path.join(tmp, name), os.path.join(out, name + ".xz"))))
        shutil.copyfile(os.path.join(tmp, "checkpoint"), os.path.join(out, "checkpoint"))
        for layout in ("layout_keras2_h5.json", "layout_keras2_ckpt.json", "layout_keras3_weights_h5.json"):
            shutil.copyfile(os.path.join(tmp, layout), os.path.join(out, layout))
        p2, p3 = k2["probs"], k3["probs"]
        np.savez_compressed(
            os.path.join(out, "expected.npz"), input=reference_input(), probs_keras2=p2, probs_keras3=p3,
            bn_paths=k2["bn_paths"], bn_sizes=k2["bn_sizes"], moving_mean=k2["moving_mean"],
            moving_variance=k2["moving_variance"], epsilon=k2["epsilon"],
            layer_paths=k2["layer_paths"], layer_shapes=k2["layer_shapes"], layer_periods=k2["layer_periods"],
            param_count=k2["count"], depth=np.array(depth), num_classes=np.int64(NUM_CLASSES),
            size=np.int64(SIZE), keras3_version=k3["keras_version"],
            seed_weights=np.int64(SEED_WEIGHTS), seed_input=np.int64(SEED_INPUT), first_period=np.int64(FIRST_PERIOD),
            branch_gain=np.float64(BRANCH_GAIN), offset=np.float64(OFFSET), dense_gain=np.float64(DENSE_GAIN),
            tensorflow_version=k2["tensorflow_version"], keras2_version=k2["keras_version"])
    print(f"{depth}: {int(k2['count']):,} parameters, {time.time() - t0:.0f} s")
    for name, raw, packed in sizes:
        print(f"  {name:34s} {raw:>12,} bytes -> {packed:>9,} ({raw / packed:,.0f}x)")
    for label, p in (("keras2", p2), ("keras3", p3)):
        print(f"  probs {label}: min {p.min():.4f} max {p.max():.4f}, per image max " +
              ", ".join(f"{v:.4f}" for v in p.max(1)) + ", argmax " + str(p.argmax(1).tolist()) +
              ", std of log-probs " + ", ".join(f"{v:.3f}" for v in np.log(p).std(1)))
    print(f"  Keras 2 vs Keras 3: max |dp| {np.abs(p2 - p3).max():.3g}, max rel "
          f"{(np.abs(p2 - p3) / p2).max():.3g}")


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("depths", nargs="*", help=f"some of {', '.join(DEPTHS)} (default: all)")
    ap.add_argument("--worker", choices=("keras2", "keras3"))
    ap.add_argument("--depth", choices=DEPTHS)
    ap.add_argument("--dir")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.depth, args.dir)
    unknown = sorted(set(args.depths) - set(DEPTHS))
    if unknown:
        ap.error(f"unknown depth {', '.join(unknown)}: choose from {', '.join(DEPTHS)}")
    for depth in args.depths or DEPTHS:
        make(depth)
    total = folder_size(OUT)
    for depth in sorted(os.listdir(OUT)):
        print(f"{depth}/: {folder_size(os.path.join(OUT, depth)):,} bytes")
    print(f"tests/fixtures/keras/tutorial/: {total:,} bytes in all")
    assert total <= LIMIT_MB * 2**20, f"the fixtures pass {LIMIT_MB} MB"


if __name__ == "__main__":
    main()
