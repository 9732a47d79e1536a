"""Hostile Keras weight files (HDF5), for the corpus of tools/make_hostile_corpus.py.

Each file is a real Keras-written file (tests/fixtures/keras/files/tiny_v1_legacy.h5, or its
Keras 3 twin tiny_v1.weights.h5) changed in one place, as issue 23 found them: a batch norm's
moving mean (``conv1_bn``) whose bytes come from another file (external storage, a virtual
dataset, an external link), links that go round in a cycle, a deflate bomb behind a (64,)
dataset, values too large for float32, lying attributes, a truncated file, a superblock that
lies about the file's size, a hundred thousand links in one group ...

The "secret" files beside them hold a marker: if any load ever *succeeded* on a file that
points at one, the secret's bytes would be the model's weights. Every such case must end in
a ``WeightsError``; the check is the corpus's, run in a worker process (a crash or hang is
seen and named). Loader "keras": ``load_keras_weights`` into the tiny ResNet those files are for.
"""
import os
import shutil
import struct
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(ROOT, "tests", "fixtures", "keras", "files")
LEGACY, KERAS3 = os.path.join(FILES, "tiny_v1_legacy.h5"), os.path.join(FILES, "tiny_v1.weights.h5")
TARGET = "conv1_bn/conv1_bn/moving_mean"          # a (64,) float32 in the legacy file
SECRET = b"MINIRES-SECRET " * 64                  # 960 bytes: enough for a (64,) float32


def tiny_model():
    """The tiny ResNet the files are for (tests/fixtures/keras/files/tiny_v1.npz's spec)."""
    import json
    from minires.keras.models import KerasResNet
    with np.load(os.path.join(FILES, "tiny_v1.npz"), allow_pickle=False) as f:
        spec = json.loads(str(f["spec"]))
    return KerasResNet(spec["version"], spec["layers"], spec["widths"], num_classes=5, data_format="channels_last")


def load_into_tiny(path):
    from minires.keras.weights import load_keras_weights
    return load_keras_weights(tiny_model(), path)


def _copy(out, name, src=LEGACY):
    path = os.path.join(out, name)
    shutil.copy(src, path)
    return path


def _replace(f, name, **create):
    """Replace dataset ``name`` of open file ``f`` with one made by ``create_dataset(**create)``."""
    del f[name]
    return f.create_dataset(name, **create)


def write_hdf5_attacks(out, entries):
    import h5py

    def add(fname, what, expect="error"):
        entries.append((fname, "keras", expect, what))

    secret = os.path.join(out, "secret.bin")
    with open(secret, "wb") as f:
        f.write(SECRET)
    fifo = os.path.join(out, "fifo")
    if hasattr(os, "mkfifo") and not os.path.exists(fifo):
        os.mkfifo(fifo)
    with h5py.File(os.path.join(out, "other.h5"), "w") as f:
        f.create_dataset("x", data=np.frombuffer(SECRET[:256], np.float32))

    # -- bytes from outside the file: external storage, virtual datasets, external links
    for fname, target, what in [("external-etc-passwd.h5", "/etc/passwd", "external storage pointing at /etc/passwd"),
                                ("external-beside.h5", secret, "external storage pointing at a file beside it"),
                                ("external-relative.h5", "secret.bin", "external storage, a relative name"),
                                ("external-fifo.h5", fifo, "external storage pointing at a FIFO (a hang before)")]:
        with h5py.File(_copy(out, fname), "r+") as f:
            _replace(f, TARGET, shape=(64,), dtype="<f4", external=[(target, 0, 256)])
        add(fname, what)
    with h5py.File(_copy(out, "vds-other.h5"), "r+") as f:
        layout = h5py.VirtualLayout(shape=(64,), dtype="<f4")
        layout[:] = h5py.VirtualSource(os.path.join(out, "other.h5"), "x", shape=(64,))
        del f[TARGET]
        f.create_virtual_dataset(TARGET, layout)
    add("vds-other.h5", "a virtual dataset mapping another file")
    with h5py.File(_copy(out, "vds-self.h5"), "r+") as f:
        layout = h5py.VirtualLayout(shape=(64,), dtype="<f4")
        layout[:] = h5py.VirtualSource(".", TARGET, shape=(64,))
        del f[TARGET]
        f.create_virtual_dataset(TARGET, layout)
    add("vds-self.h5", "a virtual dataset mapping itself (SIGSEGV before)")
    for fname, target, what in [("extlink-other.h5", os.path.join(out, "other.h5"), "an external link to another file"),
                                ("extlink-fifo.h5", fifo, "an external link to a FIFO (a hang before)")]:
        with h5py.File(_copy(out, fname), "r+") as f:
            del f[TARGET]
            f[TARGET] = h5py.ExternalLink(target, "/x")
        add(fname, what)
    with h5py.File(_copy(out, "extlink-group.h5"), "r+") as f:
        del f["conv1_bn"]
        f["conv1_bn"] = h5py.ExternalLink(os.path.join(out, "other.h5"), "/")
    add("extlink-group.h5", "a layer's whole group an external link")

    for fname, where, what in [("extlink-keras3-layers.h5", "layers", "a Keras 3 file whose 'layers' is an external link to a FIFO"),
                               ("extlink-keras3-vars.h5", "layers/conv2d/vars", "a Keras 3 layer's 'vars' an external link to a FIFO")]:
        with h5py.File(_copy(out, fname, KERAS3), "r+") as f:
            where = where if where in f else next(f"layers/{g}/vars" for g in f["layers"] if "vars" in f["layers"][g])
            del f[where]
            f[where] = h5py.ExternalLink(fifo, "/x")
        add(fname, what)
    with h5py.File(os.path.join(out, "extlink-model-weights.h5"), "w") as f:
        f["model_weights"] = h5py.ExternalLink(fifo, "/")
    add("extlink-model-weights.h5", "a whole-model file whose 'model_weights' is an external link to a FIFO")

    # -- links inside the file
    with h5py.File(_copy(out, "softlink-cycle.h5"), "r+") as f:
        del f[TARGET]
        f[TARGET] = h5py.SoftLink("/loop_a")
        f["loop_a"] = h5py.SoftLink("/loop_b")
        f["loop_b"] = h5py.SoftLink("/loop_a")
    add("softlink-cycle.h5", "a soft-link cycle (a raw RuntimeError before)")
    with h5py.File(_copy(out, "softlink-elsewhere.h5"), "r+") as f:
        del f[TARGET]
        f[TARGET] = h5py.SoftLink("/conv1_conv/conv1_conv/bias")
    add("softlink-elsewhere.h5", "a soft link to another layer's weight")
    with h5py.File(_copy(out, "recursive-group.h5", KERAS3), "r+") as f:
        f["layers/loop"] = f["layers"]                              # a hard link: layers/loop/loop/loop ...
        f["layers/loop2/vars"] = f["layers"]
    add("recursive-group.h5", "a Keras 3 file whose 'layers' group contains itself")

    # -- bounded work: a deflate bomb, chunks, filters
    with h5py.File(_copy(out, "gzip-bomb.h5"), "r+") as f:
        ds = _replace(f, TARGET, shape=(64,), dtype="<f4", chunks=(64,), compression="gzip")
        ds.id.write_direct_chunk((0,), _deflated_zeros(1 << 30), filter_mask=0)
    add("gzip-bomb.h5", "a (64,) gzip chunk that inflates to 1 GiB (a hang, or 1.3 GB, before)")
    with h5py.File(_copy(out, "gzip-bomb-small.h5"), "r+") as f:
        ds = _replace(f, TARGET, shape=(64,), dtype="<f4", chunks=(64,), compression="gzip")
        ds.id.write_direct_chunk((0,), _deflated_zeros(1 << 20), filter_mask=0)
    add("gzip-bomb-small.h5", "a (64,) gzip chunk of 1 KB that inflates to 1 MiB")
    with h5py.File(_copy(out, "gzip-short.h5"), "r+") as f:
        ds = _replace(f, TARGET, shape=(64,), dtype="<f4", chunks=(64,), compression="gzip")
        ds.id.write_direct_chunk((0,), zlib.compress(bytes(100)), filter_mask=0)
    add("gzip-short.h5", "a gzip chunk that inflates to fewer bytes than the chunk")
    with h5py.File(_copy(out, "gzip-corrupt.h5"), "r+") as f:
        ds = _replace(f, TARGET, shape=(64,), dtype="<f4", chunks=(64,), compression="gzip")
        ds.id.write_direct_chunk((0,), b"\x78\x9c" + b"\xff" * 60, filter_mask=0)
    add("gzip-corrupt.h5", "a gzip chunk that is not a deflate stream")
    value = np.linspace(-1, 1, 64, dtype=np.float32)
    for fname, create, what in [
            ("gzip-shuffle.h5", dict(chunks=(64,), compression="gzip", shuffle=True), "gzip + shuffle (valid)"),
            ("lzf.h5", dict(chunks=(64,), compression="lzf", shuffle=True), "lzf + shuffle (valid)"),
            ("chunked-edges.h5", dict(chunks=(48,), compression="gzip"), "chunks that overhang the end (valid)"),
            ("big-endian.h5", dict(dtype=">f4"), "big-endian floats (valid)"),
            ("float16.h5", dict(dtype="<f2"), "float16 values (valid, widened)")]:
        with h5py.File(_copy(out, fname), "r+") as f:
            _replace(f, TARGET, data=value.astype(create.pop("dtype", "<f4")), **create)
        add(fname, what, "load")
    for fname, create, what in [
            ("tiny-chunks.h5", dict(chunks=(1,)), "chunks of one value (64 chunk reads for 64 numbers)"),
            ("fletcher32.h5", dict(chunks=(64,), fletcher32=True), "a filter minires does not read (fletcher32)"),
            ("scaleoffset.h5", dict(chunks=(64,), scaleoffset=2), "the lossy scale-offset filter"),
            ("missing-chunks.h5", dict(chunks=(32,), fillvalue=7.0), "a chunked dataset with a chunk never written")]:
        with h5py.File(_copy(out, fname), "r+") as f:
            ds = _replace(f, TARGET, shape=(64,), dtype="<f4", **create)
            if fname != "missing-chunks.h5":
                ds[...] = value
            else:
                ds[:32] = value[:32]
        add(fname, what)

    # -- values and types
    for fname, data, what in [("float64-1e300.h5", np.full(64, 1e300), "float64 1e300 where a float32 belongs"),
                              ("nan.h5", np.full(64, np.nan, np.float32), "NaN weights"),
                              ("ints.h5", np.arange(64, dtype=np.int32), "integers where floats belong"),
                              ("strings.h5", np.array([b"x" * 8] * 64), "strings where floats belong"),
                              ("wrong-shape.h5", np.zeros((1 << 16,), np.float32), "a (65536,) where (64,) belongs"),
                              ("scalar.h5", np.float32(1), "a scalar where (64,) belongs")]:
        with h5py.File(_copy(out, fname), "r+") as f:
            _replace(f, TARGET, data=data)
        add(fname, what)
    with h5py.File(_copy(out, "null-dataspace.h5"), "r+") as f:
        _replace(f, TARGET, data=h5py.Empty("<f4"))
    add("null-dataspace.h5", "a null dataspace (a raw TypeError before)")
    with h5py.File(_copy(out, "group-for-dataset.h5"), "r+") as f:
        del f[TARGET]
        f.create_group(TARGET)
    add("group-for-dataset.h5", "a group where a weight belongs")
    with h5py.File(_copy(out, "compound.h5"), "r+") as f:
        _replace(f, TARGET, shape=(64,), dtype=np.dtype([("a", "<f4")]))
    add("compound.h5", "a compound type where floats belong")

    # -- attributes and layer lists that lie
    for fname, value, what in [("layer-names-ints.h5", np.arange(5), "layer_names that are integers"),
                               ("layer-names-missing.h5", [b"conv1_conv", b"no_such_layer"], "layer_names naming a missing group"),
                               ("layer-names-null.h5", h5py.Empty("S10"), "layer_names with a null dataspace"),
                               ("layer-names-2d.h5", np.array([[b"a", b"b"], [b"c", b"d"]]), "layer_names as a 2-D array"),
                               ("layer-names-long.h5", [b"x" * 100_000], "a layer name of 100,000 characters"),
                               ("layer-names-dotdot.h5", [b"../conv1_conv"], "a layer name with '..'")]:
        with h5py.File(_copy(out, fname), "r+") as f:
            f.attrs["layer_names"] = value
        add(fname, what)
    with h5py.File(_copy(out, "weight-names-ints.h5"), "r+") as f:
        f["conv1_bn"].attrs["weight_names"] = np.arange(4.0)
    add("weight-names-ints.h5", "weight_names that are floats")
    with h5py.File(_copy(out, "weight-names-missing.h5"), "r+") as f:
        f["conv1_bn"].attrs["weight_names"] = [b"conv1_bn/gamma", b"conv1_bn/nothing", b"a", b"b"]
    add("weight-names-missing.h5", "weight_names naming a missing dataset")
    with h5py.File(_copy(out, "keras3-name-int.h5", KERAS3), "r+") as f:
        group = next(g for g in f["layers"].values() if "vars" in g and len(g["vars"]))
        group["vars"].attrs["name"] = 7
    add("keras3-name-int.h5", "a Keras 3 file whose vars 'name' is an integer")
    with h5py.File(_copy(out, "keras3-vars-names.h5", KERAS3), "r+") as f:
        group = next(g for g in f["layers"].values() if "vars" in g and len(g["vars"]))
        group["vars"]["x"] = np.zeros(3, np.float32)
    add("keras3-vars-names.h5", "a Keras 3 vars group with a dataset not named 0, 1, ...")

    # -- a hundred thousand links; a file cut short; a superblock that lies
    with h5py.File(os.path.join(out, "many-links.h5"), "w", libver="latest") as f:
        ds = f.create_dataset("d", data=np.zeros(1, np.float32))
        layers = f.create_group("layers")
        for i in range(100_000):
            layers[f"l{i}"] = ds
    add("many-links.h5", "a Keras 3 'layers' group of 100,000 links (to one tiny dataset)")
    with h5py.File(os.path.join(out, "many-layer-names.h5"), "w", libver="latest") as f:
        group = f.create_group("g")
        group.attrs["weight_names"] = [b"d"]
        group.create_dataset("d", data=np.zeros(1, np.float32))
        f.attrs["layer_names"] = np.array([b"g"] * 1_500)
    add("many-layer-names.h5", "1,500 layer names, all the same layer")
    with h5py.File(os.path.join(out, "many-layers.h5"), "w", libver="latest") as f:
        for i in range(1_500):
            group = f.create_group(f"g{i}")
            group.attrs["weight_names"] = [b"d"]
            group["d"] = f["g0/d"] if i else np.zeros(1, np.float32)
        f.attrs["layer_names"] = np.array([f"g{i}".encode() for i in range(1_500)])
    add("many-layers.h5", "1,500 layers (the most minires reads), each with a weight")
    with h5py.File(os.path.join(out, "too-many-layer-names.h5"), "w", libver="latest") as f:
        f.attrs["layer_names"] = np.array([f"g{i}".encode() for i in range(20_000)])
    add("too-many-layer-names.h5", "20,000 layer names")
    raw = open(LEGACY, "rb").read()
    for fname, cut in [("truncated-half.h5", len(raw) // 2), ("truncated-1k.h5", 1024),
                       ("truncated-header.h5", 12)]:
        with open(os.path.join(out, fname), "wb") as f:
            f.write(raw[:cut])
        add(fname, f"the legacy file cut to {cut} bytes")
    version = raw[8]
    eof_at = 40 if version in (0, 1) else 28         # superblock v0/v1: end-of-file address at byte 40; v2/v3: 28
    for fname, eof in [("superblock-eof-huge.h5", 1 << 62), ("superblock-eof-small.h5", 100)]:
        with open(os.path.join(out, fname), "wb") as f:
            f.write(raw[:eof_at] + struct.pack("<Q", eof) + raw[eof_at + 8:])
        add(fname, f"a superblock (version {version}) that says the file ends at {eof}")
    add("fifo", "a FIFO given as the weights file (a hang before)")
    os.makedirs(os.path.join(out, "folder.h5"), exist_ok=True)
    add("folder.h5", "a directory given as the weights file")
    if not os.path.lexists(os.path.join(out, "dev-zero.h5")):
        os.symlink("/dev/zero", os.path.join(out, "dev-zero.h5"))
    add("dev-zero.h5", "a link to /dev/zero given as the weights file")
    with open(os.path.join(out, "magic-only.h5"), "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n" + b"\xff" * 4096)
    add("magic-only.h5", "the HDF5 signature, then garbage")


def _deflated_zeros(n):
    """A zlib stream of ``n`` zero bytes (about n / 1000 bytes long), made a MiB at a time."""
    c = zlib.compressobj(9)
    block = bytes(1 << 20)
    parts = [c.compress(block) for _ in range(n >> 20)]
    return b"".join(parts) + c.flush()


def write_hdf5_mutants(out, entries, count=30, seed=0):
    """``count`` byte-mutated copies of each Keras-written file (flips, 8-byte splices of hostile
    numbers, cuts), expected to load or end in a WeightsError -- never a crash, hang or raw error.

    These reach libhdf5's own parser, which is C: they run in the corpus's worker process,
    where a crash is seen and named instead of ending the test run.
    """
    rng = np.random.default_rng(seed)
    for src in (LEGACY, KERAS3):
        raw = open(src, "rb").read()
        for i in range(count):
            b = bytearray(raw)
            kind = ("flip", "splice", "cut")[i % 3]
            if kind == "flip":
                for _ in range(int(rng.integers(1, 9))):
                    b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
            elif kind == "splice":                    # the metadata sits in the first few KB
                at = int(rng.integers(0, 4096))
                b[at:at + 8] = (b"\xff" * 8, bytes(8), struct.pack("<Q", 1 << 62), struct.pack("<q", -1))[i % 4]
            else:
                del b[int(rng.integers(64, len(b))):]
            name = f"mutant-{os.path.basename(src).split('.')[0]}-{i}.h5"
            with open(os.path.join(out, name), "wb") as f:
                f.write(bytes(b))
            entries.append((name, "keras", "any", f"{kind} of {os.path.basename(src)}"))
