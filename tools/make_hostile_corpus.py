"""Write a corpus of hostile weights and checkpoint files, and (``--check``) load every one.

    python tools/make_hostile_corpus.py OUT_DIR            # writes OUT_DIR/*.pth ... and manifest.json
    python tools/make_hostile_corpus.py OUT_DIR --check    # writes, loads each, prints the figures

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

``manifest.json`` lists each file with the loader to use ("weights": load_weights,
"checkpoint": load_checkpoint, "torch": load_torch, "keras": load_keras_weights into a
tiny Keras ResNet, "tf-checkpoint": read_tf_checkpoint) and what must happen: "error" (a
WeightsError) or "load" (a valid if unusual file: big-endian, Fortran order).
The checking itself lives in :mod:`corpus_check` (beside this script).
"""
import argparse
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
    print(f"wrote {len(manifest)} files to {args.out}")
    if args.check:
        results = check_corpus(args.out)
        print(summarise(results))
        return 0 if all(r["ok"] for r in results) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
