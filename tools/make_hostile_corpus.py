"""Write a corpus of hostile weights and checkpoint files, and (``--check``) load every one.

    python tools/make_hostile_corpus.py OUT_DIR            # writes OUT_DIR/*.pth ... and manifest.json
    python tools/make_hostile_corpus.py OUT_DIR --check    # writes, loads each, prints the figures

The data-set files of issue 26 go to OUT_DIR/data/, with their own manifest.json.

Every attack of issue 13 is here as a small file (the 2 MiB integers and the 300 MB bomb
at a smaller scale, which shows the same thing), plus the code-execution payloads the
allow-list refuses: dangerous globals called through every opcode that can call
(REDUCE, STACK_GLOBAL, INST, OBJ, NEWOBJ, EXT1, BUILD) in every container (a plain
pickle, a legacy torch file, a zip torch file, hidden inside a state_dict).

The payloads are harmless by construction: each would only create a marker file
(``OUT_DIR/MARKER-<name>``) if it ever ran, and the check fails if any marker exists.
Nothing here deletes, downloads or runs anything else.

The Keras (HDF5) files of issue 23 are written by :mod:`hostile_hdf5`, the TensorFlow
checkpoints of issue 24 by :mod:`hostile_tf_checkpoint` (both beside this script).

The data sets of issue 26 (:func:`write_data_corpus`): CIFAR-10 batches in the published
files' own format (Python 2's pickle protocol 2, numpy's ``_reconstruct``), each changed in
one place -- an array that asks for (300000, 3072) with no data, a BUILD whose shape lies,
a "billion laughs" of shared lists in ``batches.meta``, nesting, memo and opcode-count
attacks, the code-execution payloads -- whole ``cifar-10-batches-py`` folders, and gzip'd
IDX files (MNIST) whose headers declare more than the file can hold. Loaders "cifar-batch",
"cifar-folder", "idx-images", "mnist-folder"; "error" means a DataError.

``manifest.json`` lists each file with the loader to use ("weights": load_weights,
"checkpoint": load_checkpoint, "torch": load_torch, "keras": load_keras_weights into a
tiny Keras ResNet, "tf-checkpoint": read_tf_checkpoint) and what must happen: "error" (a
WeightsError) or "load" (a valid if unusual file: big-endian, Fortran order).
The checking itself lives in :mod:`corpus_check` (beside this script).
"""
import argparse
import gzip
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus_check import check_corpus, summarise  # noqa: E402
from hostile_hdf5 import write_hdf5_attacks  # noqa: E402
from hostile_tf_checkpoint import write_tf_checkpoint_attacks  # noqa: E402

LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


# ------------------------------------------------------------------ pickle bytes, spelled out
def s_(text):
    raw = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def i_(n):
    if -2 ** 31 <= n < 2 ** 31:
        return pickle.BININT + struct.pack("<i", n)
    return pickle.LONG1 + bytes([8]) + struct.pack("<q", n)


def g_(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def t_(*items):
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def long4(n_bytes):
    """A LONG4 opcode for a positive integer of n_bytes bytes (0x7f... so it stays positive)."""
    return pickle.LONG4 + struct.pack("<i", n_bytes) + b"\xff" * (n_bytes - 1) + b"\x7f"


def tensor_op(key, numel, offset, size, stride, stype="FloatStorage", legacy=False, raw_size=None):
    pid = t_(s_("storage"), g_("torch", stype), s_(key), s_("cpu"), i_(numel),
             *([pickle.NONE] if legacy else [])) + pickle.BINPERSID
    hooks = g_("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    size_ops = raw_size if raw_size is not None else t_(*map(i_, size))
    offset_op = offset if isinstance(offset, bytes) else i_(offset)
    args = t_(pid, offset_op, size_ops, t_(*map(i_, stride)), pickle.NEWFALSE, hooks)
    return g_("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE


def dict_pickle(entries):
    body = b"".join(s_(k) + v + pickle.SETITEM for k, v in entries.items())
    return pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + body + pickle.STOP


def torch_zip(path, pkl, records=None, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compress) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", "little")
        for key, raw in (records or {}).items():
            zf.writestr(f"archive/data/{key}", raw)


def torch_legacy(path, pkl, records=None):
    with open(path, "wb") as f:
        for value in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
            f.write(pickle.dumps(value, protocol=2))
        f.write(pkl)
        f.write(pickle.dumps(sorted(records or {}), protocol=2))
        for key, (numel, raw) in sorted((records or {}).items()):
            f.write(struct.pack("<q", numel) + raw)


# ------------------------------------------------------------------ code-execution payloads
def payload_calls(marker):
    """(module, name, args pickle) -- each would only touch ``marker`` if it ran."""
    m = marker
    return [
        ("posix", "system", t_(s_(f"touch '{m}'"))),
        ("os", "system", t_(s_(f"touch '{m}'"))),
        ("os", "popen", t_(s_(f"touch '{m}'"))),
        ("builtins", "eval", t_(s_(f"open({m!r}, 'w')"))),
        ("builtins", "exec", t_(s_(f"open({m!r}, 'w')"))),
        ("__builtin__", "eval", t_(s_(f"open({m!r}, 'w')"))),           # the Python 2 spelling
        ("builtins", "open", t_(s_(m), s_("w"))),
        ("io", "open", t_(s_(m), s_("w"))),
        ("builtins", "getattr", t_(g_("builtins", "open"), s_("__call__"))),
        ("builtins", "__import__", t_(s_("os"))),
        ("subprocess", "call", t_(pickle.EMPTY_LIST + pickle.MARK + s_("touch") + s_(m) + pickle.APPENDS)),
        ("subprocess", "Popen", t_(pickle.EMPTY_LIST + pickle.MARK + s_("touch") + s_(m) + pickle.APPENDS)),
        ("importlib", "import_module", t_(s_("os"))),
        ("numpy", "load", t_(s_(m + ".npy"), pickle.NEWTRUE)),
        ("numpy.f2py", "compile", t_(s_("pass"))),
        ("runpy", "run_path", t_(s_(m + ".py"))),
        ("pickle", "loads", t_(pickle.SHORT_BINBYTES + bytes([1]) + b"N")),
        ("torch", "load", t_(s_(m))),
        ("torch.serialization", "load", t_(s_(m))),
        ("collections", "namedtuple", t_(s_("x"), s_("a"))),             # allowed module, other name
    ]


def call_styles(module, name, args):
    """The same call through each opcode that can call: name -> pickle body (one object)."""
    stack_global = (pickle.SHORT_BINUNICODE + bytes([len(module)]) + module.encode()
                    + pickle.SHORT_BINUNICODE + bytes([len(name)]) + name.encode() + pickle.STACK_GLOBAL)
    return {
        "reduce": g_(module, name) + args + pickle.REDUCE,
        "stack_global": stack_global + args + pickle.REDUCE,
        "inst": pickle.MARK + pickle.INST + f"{module}\n{name}\n".encode(),
        "obj": pickle.MARK + g_(module, name) + pickle.OBJ,
        "newobj": g_(module, name) + pickle.EMPTY_TUPLE + pickle.NEWOBJ,
    }


def write_payloads(out, entries):
    for module, name, args in payload_calls(os.path.join(out, f"MARKER-{len(entries)}")):
        for style, body in call_styles(module, name, args).items():
            proto = b"\x04" if style == "stack_global" else b"\x02"
            whole = pickle.PROTO + proto + body + pickle.STOP
            hidden = (pickle.PROTO + proto + pickle.EMPTY_DICT + s_("conv.weight") + body + pickle.SETITEM
                      + pickle.STOP)
            tag = f"{module}.{name}-{style}".replace("_", "")
            torch_zip(os.path.join(out, f"exec-{tag}-zip.pth"), whole)
            torch_legacy(os.path.join(out, f"exec-{tag}-legacy.pth"), hidden)
            entries += [(f"exec-{tag}-zip.pth", "weights", "error", f"{module}.{name} via {style}, zip"),
                        (f"exec-{tag}-legacy.pth", "weights", "error", f"{module}.{name} via {style}, legacy")]
    for module, name, args in payload_calls(os.path.join(out, "MARKER-plain"))[:6]:
        path = os.path.join(out, f"exec-plain-{module}.{name}.pkl")
        with open(path, "wb") as f:
            f.write(pickle.PROTO + b"\x02" + g_(module, name) + args + pickle.REDUCE + pickle.STOP)
        entries.append((os.path.basename(path), "torch", "error", f"{module}.{name}, a bare pickle"))
    other = {
        "exec-ext1.pth": pickle.PROTO + b"\x02" + pickle.EXT1 + b"\x01" + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.STOP,
        "exec-build-on-allowed.pth": (pickle.PROTO + b"\x02" + g_("torch._utils", "_rebuild_tensor_v2")
                                      + pickle.EMPTY_DICT + s_("__call__") + g_("posix", "system") + pickle.SETITEM
                                      + pickle.BUILD + pickle.STOP),
        "exec-nested-stack-global.pth": (pickle.PROTO + b"\x04" + s_("builtins") + s_("getattr") + pickle.STACK_GLOBAL
                                         + t_(s_("posix"), s_("system")) + pickle.REDUCE + pickle.STOP),
        "exec-persid-text.pth": pickle.PROTO + b"\x02" + pickle.PERSID + b"os.system\n" + pickle.STOP,
    }
    for fname, pkl in other.items():
        torch_zip(os.path.join(out, fname), pkl)
        entries.append((fname, "weights", "error", fname[5:-4]))


# ------------------------------------------------------------------ the attacks of issue 13
def write_pth_attacks(out, entries):
    def add(fname, what, expect="error", loader="weights"):
        entries.append((fname, loader, expect, what))

    deep = 200_000
    key = pickle.EMPTY_TUPLE + pickle.TUPLE1 * deep                     # ((((...),),),) 200,000 deep
    pkl = pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + key + i_(1) + pickle.SETITEM + pickle.STOP
    torch_zip(os.path.join(out, "deep-tuple-key.pth"), pkl)
    add("deep-tuple-key.pth", "a tuple nested 200,000 deep used as a dict key (SIGSEGV before)")
    marks = pickle.PROTO + b"\x02" + pickle.MARK * deep + pickle.TUPLE * deep + pickle.STOP
    torch_legacy(os.path.join(out, "deep-marks-legacy.pth"), marks)
    add("deep-marks-legacy.pth", "200,000 nested MARK ... TUPLE, legacy file")
    deep_list = pickle.PROTO + b"\x02" + (pickle.EMPTY_LIST + pickle.BINPUT + b"\x00") + \
        (pickle.EMPTY_LIST + pickle.DUP + pickle.BINPUT + b"\x01" + pickle.APPEND + pickle.BINGET + b"\x01") * 1000 + \
        pickle.POP + pickle.STOP
    torch_zip(os.path.join(out, "deep-list-by-mutation.pth"), deep_list)
    add("deep-list-by-mutation.pth", "lists nested 1000 deep through memo and APPEND")

    memo = pickle.PROTO + b"\x02" + pickle.EMPTY_TUPLE + pickle.LONG_BINPUT + struct.pack("<I", 1 << 27) + pickle.STOP
    with open(os.path.join(out, "memo-2-27.pkl"), "wb") as f:
        f.write(memo)
    add("memo-2-27.pkl", "9-byte pickle, memo index 2**27 (2 GB before)")
    torch_zip(os.path.join(out, "memo-2-27.pth"), memo)
    add("memo-2-27.pth", "the same inside a zip torch file")
    big = pickle.PROTO + b"\x04" + pickle.BINBYTES8 + struct.pack("<Q", 1 << 40) + b"x" * 16 + pickle.STOP
    torch_zip(os.path.join(out, "binbytes8-1tb.pth"), big)
    add("binbytes8-1tb.pth", "BINBYTES8 claiming 1 TB")

    entries_ = {f"t{i}": tensor_op("0", 4, 0, (1024, 1024), (0, 0)) for i in range(40)}   # 4 MiB each
    torch_zip(os.path.join(out, "zero-stride-40.pth"), dict_pickle(entries_), {"0": bytes(16)})
    add("zero-stride-40.pth", "40 zero-stride tensors over one 16-byte storage (675 MB before)")
    one = {"t": tensor_op("0", 4, 0, (1 << 30, 1 << 30), (0, 0))}
    torch_legacy(os.path.join(out, "zero-stride-legacy.pth"),
                 dict_pickle({"t": tensor_op("0", 4, 0, (1 << 30, 1 << 30), (0, 0), legacy=True)}),
                 {"0": (4, bytes(16))})
    add("zero-stride-legacy.pth", "a 2**60-element zero-stride tensor, legacy file")
    torch_zip(os.path.join(out, "zero-stride-one.pth"), dict_pickle(one), {"0": bytes(16)})
    add("zero-stride-one.pth", "a 2**60-element zero-stride tensor, zip file")

    n = 1 << 20                                                         # 1 MiB integers (2 MiB in the issue)
    huge = {"t": tensor_op("0", 4, 0, None, (1, 1), raw_size=t_(long4(n), long4(n)))}
    torch_zip(os.path.join(out, "huge-int-sizes.pth"), dict_pickle(huge), {"0": bytes(16)})
    add("huge-int-sizes.pth", "tensor sizes that are 1 MiB integers (92 s / a hang before)")
    for fname, op in [("negative-stride.pth", tensor_op("0", 4, 0, (2,), (-1,))),
                      ("rank-65.pth", tensor_op("0", 4, 0, (1,) * 65, (1,) * 65)),
                      ("offset-2-71.pth", tensor_op("0", 4, long4(9), (1,), (1,))),
                      ("past-storage.pth", tensor_op("0", 4, 3, (2, 2), (2, 1)))]:
        torch_zip(os.path.join(out, fname), dict_pickle({"t": op}), {"0": bytes(16)})
        add(fname, fname[:-4].replace("-", " "))
    torch_legacy(os.path.join(out, "storage-2-62-legacy.pth"),
                 dict_pickle({"t": tensor_op("0", 1 << 62, 0, (1,), (1,), legacy=True)}), {"0": (1 << 62, b"")})
    add("storage-2-62-legacy.pth", "a storage of 2**62 elements in a small file")
    traversal = dict_pickle({"t": tensor_op("../../../etc/passwd", 4, 0, (4,), (1,))})
    torch_zip(os.path.join(out, "storage-key-traversal.pth"), traversal, {"0": bytes(16)})
    add("storage-key-traversal.pth", "a storage key with ../ (path traversal)")
    torch_zip(os.path.join(out, "deflate-bomb.pth"), dict_pickle({"t": tensor_op("0", 1 << 22, 0, (1 << 22,), (1,))}),
              {"0": bytes(16 << 20)}, compress=zipfile.ZIP_DEFLATED)
    add("deflate-bomb.pth", "16 MiB of zeros deflated to 16 KB")
    with zipfile.ZipFile(os.path.join(out, "torchscript.pt"), "w") as zf:
        for name in ("m/data.pkl", "m/constants.pkl", "m/code/__torch__.py"):
            zf.writestr(name, b"\x80\x02}.")
    add("torchscript.pt", "a TorchScript archive (holds code)")
    cyclic = pickle.PROTO + b"\x02" + pickle.EMPTY_LIST + pickle.BINPUT + b"\0" + pickle.BINGET + b"\0" \
        + pickle.APPEND + pickle.STOP
    torch_zip(os.path.join(out, "cycle.pth"), cyclic)
    add("cycle.pth", "a list that contains itself")


def write_safetensors_attacks(out, entries):
    def st(fname, header, data=b"", what="", n=None):
        raw = header if isinstance(header, bytes) else json.dumps(header).encode()
        with open(os.path.join(out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(raw) if n is None else n) + raw + data)
        entries.append((fname, "weights", "error", what))

    digits = int("9" * 4299)
    st("huge-digit-shapes.safetensors",
       {f"t{i}": {"dtype": "F32", "shape": [digits, digits], "data_offsets": [0, 0]} for i in range(100)},
       what="shapes of 4,299-digit integers (152 s / a hang before)")
    st("zero-size-huge-dim.safetensors", {"t": {"dtype": "F32", "shape": [0, 1 << 62], "data_offsets": [0, 0]}},
       what="a zero-size tensor with a 2**62 dimension")
    st("shape-overflow.safetensors", {"t": {"dtype": "F32", "shape": [1 << 31] * 3, "data_offsets": [0, 4]}},
       b"\0" * 4, what="a shape whose product overflows")
    st("rank-100.safetensors", {"t": {"dtype": "U8", "shape": [1] * 100, "data_offsets": [0, 1]}}, b"\0",
       what="100 dimensions")
    st("header-length-2-63.safetensors", b"{}", n=(1 << 63), what="header length 2**63")
    st("offsets-outside.safetensors", {"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}},
       b"\0" * 16, what="data_offsets far past the end")
    st("deep-metadata.safetensors", b'{"__metadata__":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
       what="metadata nested 100,000 deep")
    st("text.safetensors", b"", what="an empty header", n=0)


def npz_member(zf, name, header_dict, data, compress=zipfile.ZIP_STORED, version=(1, 0)):
    text = repr(header_dict).encode("latin1")
    fmt = "<H" if version == (1, 0) else "<I"
    pre = b"\x93NUMPY" + bytes(version) + struct.pack(fmt, 0)
    pad = (-(len(pre) + len(text) + 1)) % 64
    text = text + b" " * pad + b"\n"
    raw = b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text)) + text + data
    zf.writestr(zipfile.ZipInfo(name + ".npy"), raw, compress_type=compress)


def write_npz_attacks(out, entries):
    def add(fname, what, expect="error", loader="checkpoint"):
        entries.append((fname, loader, expect, what))

    with zipfile.ZipFile(os.path.join(out, "deflate-bomb.npz"), "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as m:
            np.lib.format.write_array_header_1_0(m, {"descr": "<f4", "fortran_order": False, "shape": (1 << 24,)})
            zero = bytes(1 << 20)
            for _ in range(64):
                m.write(zero)
    add("deflate-bomb.npz", "64 MiB of zeros deflated to ~64 KB (a 306 KB -> 300 MB bomb in the issue)")
    for fname, descr, shape, data, expect, what in [
        ("big-endian.npz", ">f4", (2, 3), np.arange(6, dtype=">f4").tobytes(), "load", "big-endian floats (converted)"),
        ("unicode.npz", "<U4", (2,), bytes(32), "error", "unicode strings"),
        ("structured.npz", [("a", "<f4"), ("b", "<i4")], (2,), bytes(16), "error", "a structured array"),
        ("datetime.npz", "<M8[s]", (2,), bytes(16), "error", "datetimes"),
        ("object.npz", "|O", (2,), bytes(16), "error", "objects (a pickle)"),
        ("huge-shape.npz", "<f4", (1 << 62, 1 << 62), b"", "error", "a (2**62, 2**62) shape"),
        ("zero-size-huge.npz", "<f4", (0, 1 << 62), b"", "error", "a zero-size array with a 2**62 dimension"),
        ("short-data.npz", "<f8", (100,), bytes(8), "error", "100 float64 declared, 8 bytes given"),
        ("rank-65.npz", "<f4", (1,) * 65, bytes(4), "error", "65 dimensions"),
    ]:
        with zipfile.ZipFile(os.path.join(out, fname), "w") as zf:
            npz_member(zf, "w", {"descr": descr, "fortran_order": False, "shape": shape}, data)
        add(fname, what, expect)
    with zipfile.ZipFile(os.path.join(out, "fortran.npz"), "w") as zf:
        npz_member(zf, "w", {"descr": "<f8", "fortran_order": True, "shape": (2, 3)}, np.arange(6.0).tobytes())
    add("fortran.npz", "Fortran order (converted to C order)", "load")
    with zipfile.ZipFile(os.path.join(out, "header-too-big.npz"), "w") as zf:
        npz_member(zf, "w", {"descr": "<f4", "fortran_order": False, "shape": (1,), "x": "y" * 50_000},
                   bytes(4), version=(2, 0))
    add("header-too-big.npz", "a 50 KB .npy header")
    deep = b"[" * 100_000 + b"]" * 100_000
    for fname, text, what in [("deep-json.npz", deep, "metadata nested 100,000 deep (RecursionError before)"),
                              ("deep-json-500.npz", b'{"a":' + b"[" * 500 + b"]" * 500 + b"}", "metadata 500 deep"),
                              ("meta-not-json.npz", b"{oops", "metadata that is not JSON"),
                              ("meta-list.npz", b"[1, 2]", "metadata that is a list")]:
        with zipfile.ZipFile(os.path.join(out, fname), "w") as zf:
            npz_member(zf, "__metadata__", {"descr": "|u1", "fortran_order": False, "shape": (len(text),)}, text)
        add(fname, what)
    with open(os.path.join(out, "text.npz"), "w") as f:
        f.write("epoch,loss\n1,0.5\n")
    add("text.npz", "a text file named .npz (issue 12)")
    open(os.path.join(out, "empty.npz"), "wb").close()
    add("empty.npz", "an empty file")
    with zipfile.ZipFile(os.path.join(out, "not-npy.npz"), "w") as zf:
        zf.writestr("../../evil.sh", b"touch MARKER")
    add("not-npy.npz", "a zip with a ../ member that is no .npy")


def write_special_files(out, entries):
    """Paths that are not regular files: each loader refuses them before reading (a FIFO hung before)."""
    for loader, ext in [("weights", "pth"), ("checkpoint", "npz"), ("torch", "pt")]:
        fifo = os.path.join(out, f"fifo.{ext}")
        if hasattr(os, "mkfifo") and not os.path.exists(fifo):
            os.mkfifo(fifo)
            entries.append((f"fifo.{ext}", loader, "error", f"a FIFO given to {loader} (a hang before)"))
        folder = os.path.join(out, f"folder.{ext}")
        os.makedirs(folder, exist_ok=True)
        entries.append((f"folder.{ext}", loader, "error", f"a directory given to {loader}"))
    if os.path.exists("/dev/zero") and not os.path.lexists(os.path.join(out, "dev-zero.pth")):
        os.symlink("/dev/zero", os.path.join(out, "dev-zero.pth"))
        entries.append(("dev-zero.pth", "weights", "error", "a link to /dev/zero (endless zeros)"))


# ------------------------------------------------------------------ data sets (issue 26)
def u_(raw):
    """Python 2's str, as the published CIFAR files write it (SHORT_BINSTRING / BINSTRING)."""
    if len(raw) < 256:
        return pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw
    return pickle.BINSTRING + struct.pack("<i", len(raw)) + raw


def py2_array(shape, raw, dtype=b"u1", reconstruct_shape=(0,), build=True):
    """A numpy array as Python 2's numpy pickled it: _reconstruct(ndarray, (0,), 'b'), then
    BUILD with (1, shape, dtype, fortran, bytes). The keywords make it lie."""
    dtype_op = (g_("numpy", "dtype") + u_(dtype) + i_(0) + i_(1) + pickle.TUPLE3 + pickle.REDUCE
                + t_(i_(3), u_(b"|"), pickle.NONE, pickle.NONE, pickle.NONE, i_(-1), i_(-1), i_(0)) + pickle.BUILD)
    op = (g_("numpy.core.multiarray", "_reconstruct") + g_("numpy", "ndarray") + t_(*map(i_, reconstruct_shape))
          + u_(b"b") + pickle.TUPLE3 + pickle.REDUCE)
    if build:
        op += t_(i_(1), t_(*map(i_, shape)), dtype_op, pickle.NEWFALSE, u_(raw)) + pickle.BUILD
    return op


def int_list(values):
    return pickle.EMPTY_LIST + pickle.MARK + b"".join(map(i_, values)) + pickle.APPENDS


def py2_dict(entries):
    """A whole pickle: a dict with Python 2 str keys, as the CIFAR files are."""
    body = b"".join(u_(k) + v for k, v in entries.items())
    return pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK + body + pickle.SETITEMS + pickle.STOP


def cifar_batch(n, labels=None, **changes):
    """A CIFAR-10 batch of n images in the published files' format; ``labels`` (a list, or the
    pickle of one) and ``changes`` (key=pickle) replace its entries."""
    entries = {b"batch_label": u_(b"training batch 1 of 5"),
               b"data": py2_array((n, 3072), bytes(range(256)) * 12 * n),
               b"labels": labels if isinstance(labels, bytes) else int_list(labels or [k % 10 for k in range(n)]),
               b"filenames": pickle.EMPTY_LIST + pickle.MARK + b"".join(u_(b"img_%d.png" % k) for k in range(n))
               + pickle.APPENDS}
    entries.update({k.encode(): v for k, v in changes.items()})
    return py2_dict(entries)


def laughs(levels, fan):
    """A list that holds the list below it ``fan`` times, ``levels`` times over, written as a
    pickler writes shared objects (the first time in full, then memo references): small in the
    file and in memory, fan**levels strings for repr() to walk (4.6 GB in 54 s before)."""
    op = pickle.EMPTY_LIST + pickle.MARK + u_(b"lol") * fan + pickle.APPENDS
    for level in range(levels - 1):
        op = (pickle.EMPTY_LIST + pickle.MARK + op + pickle.BINPUT + bytes([level])
              + (pickle.BINGET + bytes([level])) * (fan - 1) + pickle.APPENDS)
    return op


def cifar_folder(out, name, batches=None, meta=None):
    """A cifar-10-batches-py folder: tiny valid batches, except those given."""
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    files = {f"data_batch_{k}": cifar_batch(2) for k in range(1, 6)}
    files["test_batch"] = cifar_batch(2)
    files["batches.meta"] = py2_dict({b"label_names": pickle.EMPTY_LIST + pickle.MARK
                                      + b"".join(u_(b"class%d" % k) for k in range(10)) + pickle.APPENDS,
                                      b"num_vis": i_(3072)})
    files.update(batches or {})
    if meta is not None:
        files["batches.meta"] = meta
    for fname, raw in files.items():
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(raw)
    return folder


def data_batch_attacks(marker):
    """file name -> (pickle bytes, what): each must end in a DataError from read_batch. The
    code-execution payloads would only create the file ``marker`` if they ever ran."""
    huge = py2_array(None, None, reconstruct_shape=(300000, 3072), build=False)
    huge_labels = py2_array(None, None, reconstruct_shape=(300000,), build=False)
    deep = pickle.EMPTY_LIST * 1000 + pickle.APPEND * 999
    p2, p4, stop = pickle.PROTO + b"\x02", pickle.PROTO + b"\x04", pickle.STOP
    zlib_label = g_("_codecs", "encode") + t_(s_("x" * 100), s_("zlib")) + pickle.REDUCE
    big_label = pickle.LONG1 + bytes([251]) + (1 << 2000).to_bytes(251, "little", signed=True)
    return {
        "reconstruct-huge": (py2_dict({b"data": huge, b"labels": huge_labels}),
                             "_reconstruct asked for (300000, 3072) with no data (3.85 GB for four files before)"),
        "state-shape-lie": (cifar_batch(1, data=py2_array((300000, 3072), bytes(3072))),
                            "BUILD says (300000, 3072), gives 3072 bytes"),
        "shape-2-62": (cifar_batch(1, data=py2_array((1 << 62, 3072), bytes(3072))), "a 2**62 dimension"),
        "rank-65": (cifar_batch(1, data=py2_array((1,) * 65, bytes(1))), "65 dimensions"),
        "object-dtype": (cifar_batch(1, data=py2_array((1, 2), bytes(16), dtype=b"O8")), "an object array (a pickle)"),
        "structured-dtype": (cifar_batch(1, data=py2_array((1, 2), bytes(16), dtype=b"V8")), "a void dtype"),
        "codecs-zlib": (cifar_batch(1, batch_label=zlib_label), "_codecs.encode with another codec"),
        "labels-2-2000": (cifar_batch(1, labels=pickle.EMPTY_LIST + big_label + pickle.APPEND),
                          "a label of 2,000 bits"),
        "labels-longer": (cifar_batch(2, labels=list(range(10)) * 30), "300 labels for 2 images"),
        "labels-none-1m": (cifar_batch(1, labels=pickle.EMPTY_LIST + pickle.MARK + pickle.NONE * 10 ** 6
                                       + pickle.APPENDS), "a million opcodes for one image"),
        "deep-lists": (p2 + deep + stop, "lists nested 1,000 deep"),
        "deep-tuple-key": (p2 + pickle.EMPTY_DICT + pickle.EMPTY_TUPLE + pickle.TUPLE1 * 200_000
                           + i_(1) + pickle.SETITEM + stop, "a dict key nested 200,000 deep (SIGSEGV in hash())"),
        "deep-marks": (p2 + pickle.MARK * 200_000 + pickle.TUPLE * 200_000 + stop, "200,000 open MARKs"),
        "laughs-labels": (cifar_batch(1, labels=laughs(6, 40)), "labels that are 40**6 shared lists"),
        "memo-2-27": (p2 + pickle.EMPTY_TUPLE + pickle.LONG_BINPUT + struct.pack("<I", 1 << 27) + stop,
                      "memo index 2**27"),
        "binbytes8-1tb": (p4 + pickle.BINBYTES8 + struct.pack("<Q", 1 << 40) + b"x" * 16 + stop,
                          "BINBYTES8 claiming 1 TB"),
        "cycle": (p2 + pickle.EMPTY_LIST + pickle.BINPUT + b"\0" + pickle.BINGET + b"\0"
                  + pickle.APPEND + stop, "a list that contains itself"),
        "grow-after-placed": (p2 + pickle.EMPTY_LIST + pickle.BINPUT + b"\0" + pickle.EMPTY_LIST
                              + pickle.BINGET + b"\0" + pickle.APPEND + pickle.BINGET + b"\0" + s_("late")
                              + pickle.APPEND + pickle.POP + stop, "a list changed after it was placed"),
        "build-on-dict": (p2 + pickle.EMPTY_DICT + pickle.EMPTY_DICT + s_("__class__")
                          + i_(1) + pickle.SETITEM + pickle.BUILD + stop, "BUILD on a dict"),
        "truncated": (cifar_batch(3)[:5000], "a batch cut short"),
        "trailing": (cifar_batch(1) + b"\x80\x02N.", "a second pickle after the first"),
        "text": (b"epoch,loss\n1,0.5\n", "a text file"),
        "empty": (b"", "an empty file"),
        **{f"exec-{style}": (p4 + body + stop, f"os.system via {style}")
           for style, body in call_styles("os", "system", t_(s_(f"touch '{marker}'"))).items()},
        "exec-ext1": (p2 + pickle.EXT1 + b"\x01" + pickle.EMPTY_TUPLE + pickle.REDUCE + stop,
                      "a copyreg extension code"),
    }


def write_data_attacks(out, entries):
    """The CIFAR-10 and MNIST files of issue 26; loaders: "cifar-batch" (read_batch),
    "cifar-folder" (read_cifar10_folder), "idx-images" (read_idx), "mnist-folder" (load_mnist
    with no checksums: a folder of the user's own files)."""
    for name, (raw, what) in data_batch_attacks(os.path.join(out, "MARKER-data")).items():
        with open(os.path.join(out, f"batch-{name}"), "wb") as f:
            f.write(raw)
        entries.append((f"batch-{name}", "cifar-batch", "error", what))
    with open(os.path.join(out, "batch-py2-valid"), "wb") as f:
        f.write(cifar_batch(64))
    entries.append(("batch-py2-valid", "cifar-batch", "load", "64 images in the published files' format"))
    huge = py2_dict({b"data": py2_array(None, None, reconstruct_shape=(300000, 3072), build=False),
                     b"labels": py2_array(None, None, reconstruct_shape=(300000,), build=False)})
    for name, batches, meta, what in [
        ("cifar-laughs-meta", None, py2_dict({b"label_names": laughs(10, 10)}), "batches.meta: 10**10 shared lists"),
        ("cifar-laughs-meta-wide", None, py2_dict({b"label_names": laughs(6, 40)}), "batches.meta: 40**6 shared lists"),
        ("cifar-reconstruct-huge", {f"data_batch_{k}": huge for k in range(1, 5)}, None,
         "four 153-byte batches asking for (300000, 3072) (3.85 GB and 1.2 million zero images before)"),
        ("cifar-long-names", None, py2_dict({b"label_names": pickle.EMPTY_LIST + pickle.MARK
                                             + u_(b"x" * 100_000) * 10 + pickle.APPENDS}), "class names of 100 KB"),
    ]:
        cifar_folder(out, name, batches, meta)
        entries.append((name, "cifar-folder", "error", what))
    folder = cifar_folder(out, "cifar-dev-zero")
    if os.path.exists("/dev/zero"):
        os.remove(os.path.join(folder, "data_batch_3"))
        os.symlink("/dev/zero", os.path.join(folder, "data_batch_3"))
        entries.append(("cifar-dev-zero", "cifar-folder", "error", "data_batch_3 is a link to /dev/zero"))
    cifar_folder(out, "cifar-own-valid")
    entries.append(("cifar-own-valid", "cifar-folder", "load", "a small folder of the user's own (a notice, no error)"))
    write_idx_attacks(out, entries)


def idx_gz(path, dims, data_bytes=None, zero_chunks=0):
    """A gzip'd IDX images file: the header says ``dims``; the data is ``data_bytes`` or that many MiB of zeros."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(struct.pack(f">i{len(dims)}i", 0x0800 | len(dims), *dims))
        f.write(data_bytes or b"")
        for _ in range(zero_chunks):
            f.write(bytes(1 << 20))


def write_idx_attacks(out, entries):
    idx_gz(os.path.join(out, "idx-bomb.gz"), (64 * 1024 * 1024 // 784, 28, 28), zero_chunks=64)
    entries.append(("idx-bomb.gz", "idx-images", "error", "64 MiB of zeros, honestly declared, in ~64 KB"))
    idx_gz(os.path.join(out, "idx-huge-header.gz"), (2 ** 31 - 1, 28, 28), zero_chunks=1)
    entries.append(("idx-huge-header.gz", "idx-images", "error", "a header declaring 1.7 TB"))
    idx_gz(os.path.join(out, "idx-longer.gz"), (2, 28, 28), bytes(3 * 784))
    entries.append(("idx-longer.gz", "idx-images", "error", "more data than the header says"))
    with open(os.path.join(out, "idx-huge-header"), "wb") as f:
        f.write(struct.pack(">i3i", 0x0803, 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1))
    entries.append(("idx-huge-header", "idx-images", "error", "a plain file whose header declares 2**93 bytes"))
    folder = os.path.join(out, "mnist-bomb", "mnist")
    os.makedirs(folder, exist_ok=True)
    for split, n in [("train", 2), ("t10k", 2)]:
        idx_gz(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), (n, 28, 28), bytes(n * 784))
        with gzip.open(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">ii", 0x0801, n) + bytes(n))
    idx_gz(os.path.join(folder, "train-images-idx3-ubyte.gz"), (64 * 1024 * 1024 // 784, 28, 28), zero_chunks=64)
    entries.append(("mnist-bomb", "mnist-folder", "error", "a folder of one's own whose train images are a gzip bomb"))


def write_data_corpus(out):
    """The data-set files of issue 26 (their own manifest: loaders raise DataError, not WeightsError)."""
    os.makedirs(out, exist_ok=True)
    entries = []
    write_data_attacks(out, entries)
    manifest = [dict(file=f, loader=loader, expect=e, what=w) for f, loader, e, w in entries]
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def write_corpus(out):
    os.makedirs(out, exist_ok=True)
    entries = []
    write_payloads(out, entries)
    write_pth_attacks(out, entries)
    write_safetensors_attacks(out, entries)
    write_npz_attacks(out, entries)
    write_special_files(out, entries)
    write_tf_checkpoint_attacks(out, entries)
    try:
        import h5py  # noqa: F401 -- the Keras files need it to be written (and read)
    except ImportError:
        print("h5py is not installed: the Keras (HDF5) files are left out (pip install h5py)")
    else:
        write_hdf5_attacks(out, entries)
    manifest = [dict(file=f, loader=loader, expect=e, what=w) for f, loader, e, w in entries]
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write the corpus into")
    parser.add_argument("--check", action="store_true", help="then load every file and print the figures")
    args = parser.parse_args(argv)
    manifest = write_corpus(args.out)
    data = os.path.join(args.out, "data")
    data_manifest = write_data_corpus(data)
    print(f"wrote {len(manifest)} files to {args.out} and {len(data_manifest)} to {data}")
    if args.check:
        results = check_corpus(args.out)
        data_results = check_corpus(data)
        print(summarise(results))
        print(f"data sets ({data}):\n" + summarise(data_results))
        return 0 if all(r["ok"] for r in results + data_results) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
