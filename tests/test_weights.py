"""minires.weights: torch .pth (zip and legacy), safetensors, npz checkpoints.

The .pth fixtures were written by real PyTorch (tools/make_weight_fixtures.py); torch is
not needed here. Broken and malicious files are built by hand in the tests.
"""
import builtins
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from minires.weights import WeightsError, detect_format, load_torch, load_weights

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")
TORCH_FILES = ["sd_zip.pth", "tiny_resnet.pth", "sd_nobyteorder.pth", "sd_bigendian.pth",
               "sd_legacy.pth", "checkpoint_wrapped.pth"]


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(FIXTURES, "expected.npz"), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def assert_bit_equal(got, want, name=""):
    """Same dtype, same shape, same bytes (so -0.0, inf and float16 subnormals count too)."""
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype, got.shape)
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), name


# ------------------------------------------------------------------ hand-built torch pickles
# Opcodes spelled out, so a test can describe any tensor record it likes, true or false.

def _s(text):
    raw = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def _i(n):
    return pickle.BININT + struct.pack("<i", n)


def _g(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _t(*items):
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def tensor_op(key, numel, offset, size, stride, stype="FloatStorage", legacy=False):
    """The pickle of torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    pid = _t(_s("storage"), _g("torch", stype), _s(key), _s("cpu"), _i(numel),
             *([pickle.NONE] if legacy else [])) + pickle.BINPERSID
    hooks = _g("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    args = _t(pid, _i(offset), _t(*map(_i, size)), _t(*map(_i, stride)), pickle.NEWFALSE, hooks)
    return _g("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE


def dict_pickle(entries):
    """{name: <op bytes>} -> the bytes of a protocol-2 pickle of that dict."""
    body = b"".join(_s(k) + v + pickle.SETITEM for k, v in entries.items())
    return pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + body + pickle.STOP


def write_torch_zip(path, pkl, records, prefix="archive", byteorder="little"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder:
            zf.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in records.items():
            zf.writestr(f"{prefix}/data/{key}", raw)
        zf.writestr(f"{prefix}/version", "3\n")


def write_torch_legacy(path, pkl, records):
    with open(path, "wb") as f:
        for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            f.write(pickle.dumps(value, protocol=2))
        f.write(pkl)
        f.write(pickle.dumps(sorted(records), protocol=2))
        for key in sorted(records):
            numel, raw = records[key]
            f.write(struct.pack("<q", numel) + raw)


# ------------------------------------------------------------------ real torch files

@pytest.mark.parametrize("name", TORCH_FILES)
def test_torch_fixtures_load_exactly(name, expected):
    sd = load_weights(os.path.join(FIXTURES, name))
    assert list(sd) == list(expected)                  # same names, same order
    for k, want in expected.items():
        got = sd[k]
        assert_bit_equal(got, want, k)
        assert got.flags.c_contiguous and got.flags.writeable and got.dtype.isnative


def test_fixtures_cover_what_they_claim(expected):
    assert expected["3.weight"].dtype == np.float16                        # float16 kept as is
    assert expected["3.bias"].dtype == np.float32                          # bfloat16 widened
    assert expected["1.num_batches_tracked"].shape == () and expected["1.num_batches_tracked"] == 7
    assert_bit_equal(expected["transposed"], np.arange(24.0).reshape(4, 6).T.copy())
    names = zipfile.ZipFile(os.path.join(FIXTURES, "tiny_resnet.pth")).namelist()
    assert "tiny_resnet/data.pkl" in names and not any(n.startswith("archive/") for n in names)
    assert "sd_nobyteorder/byteorder" not in zipfile.ZipFile(os.path.join(FIXTURES, "sd_nobyteorder.pth")).namelist()
    assert zipfile.ZipFile(os.path.join(FIXTURES, "sd_bigendian.pth")).read("archive/byteorder") == b"big"


def test_detect_format():
    assert detect_format(os.path.join(FIXTURES, "sd_zip.pth")) == "torch-zip"
    assert detect_format(os.path.join(FIXTURES, "sd_legacy.pth")) == "torch-legacy"
    assert detect_format(os.path.join(FIXTURES, "expected.npz")) == "npz"


def test_loaded_arrays_are_independent_copies():
    sd = load_weights(os.path.join(FIXTURES, "sd_zip.pth"))
    before = sd["strided_view"].copy()
    sd["row_view"][...] = 0                       # row_view and strided_view share a torch storage
    assert_bit_equal(sd["strided_view"], before)


def test_training_checkpoint_unwrapped_and_module_prefix_stripped(expected):
    path = os.path.join(FIXTURES, "checkpoint_wrapped.pth")
    assert list(load_weights(path)) == list(expected)
    assert all(k.startswith("module.") for k in load_weights(path, strip_module_prefix=False))
    everything = load_torch(path)
    assert everything["epoch"] == 3 and everything["arch"] == "tiny"


def test_torch_is_never_imported():
    load_weights(os.path.join(FIXTURES, "sd_zip.pth"))
    assert "torch" not in sys.modules


# ------------------------------------------------------------------ malicious pickles

class Evil:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def payloads(marker):
    m = str(marker)
    return {
        "os.system": (Evil(os.system, (f"touch '{m}'",)), "posix.system"),
        "eval": (Evil(builtins.eval, (f"open({m!r}, 'w').write('pwned')",)), "builtins.eval"),
        "exec": (Evil(builtins.exec, (f"open({m!r}, 'w')",)), "builtins.exec"),
        "subprocess": (Evil(subprocess.call, (["touch", m],)), "subprocess.call"),
        "open-for-write": (Evil(open, (m, "w")), "io.open"),
    }


@pytest.mark.parametrize("container", ["plain-pickle", "zip", "zip-nested", "legacy"])
@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("kind", ["os.system", "eval", "exec", "subprocess", "open-for-write"])
def test_malicious_pickles_are_refused(tmp_path, kind, protocol, container):
    marker = tmp_path / "pwned"
    evil, qualname = payloads(marker)[kind]
    pkl = pickle.dumps(evil, protocol=protocol)
    path = tmp_path / "evil.pth"
    if container == "plain-pickle":
        path.write_bytes(pkl)
    elif container == "zip":
        write_torch_zip(path, pkl, {})
    elif container == "zip-nested":      # hidden inside an otherwise plausible state_dict
        write_torch_zip(path, pickle.dumps({"conv.weight": [1.0], "x": {"y": evil}}, protocol=protocol), {})
    else:
        write_torch_legacy(path, pkl, {})
    with pytest.raises(WeightsError, match="refusing to load global") as err:
        load_weights(path)
    assert qualname in str(err.value)
    assert not marker.exists()


def test_build_opcode_cannot_modify_the_stand_ins(tmp_path):
    # _rebuild_tensor_v2 then BUILD with a state dict: would overwrite attributes of our stand-in.
    pkl = (pickle.PROTO + b"\x02" + _g("torch._utils", "_rebuild_tensor_v2") + pickle.EMPTY_DICT
           + _s("__call__") + _i(1) + pickle.SETITEM + pickle.BUILD + pickle.STOP)
    write_torch_zip(tmp_path / "m.pth", pkl, {})
    with pytest.raises(WeightsError, match="BUILD"):
        load_weights(tmp_path / "m.pth")


def test_torchscript_archive_is_refused_clearly(tmp_path):
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("m/data.pkl", "m/constants.pkl", "m/code/__torch__.py"):
            zf.writestr(name, b"\x80\x02}.")
    with pytest.raises(WeightsError, match="TorchScript"):
        load_weights(path)


# ------------------------------------------------------------------ hand-built records

def test_hand_built_zip_and_legacy_read_strided_views(tmp_path):
    storage = np.arange(12, dtype="<f4")
    entries = {"t": tensor_op("0", 12, 1, (3, 2), (1, 4)), "s": tensor_op("0", 12, 11, (), ())}
    want = np.lib.stride_tricks.as_strided(storage[1:], (3, 2), (4, 16))
    write_torch_zip(tmp_path / "a.pth", dict_pickle(entries), {"0": storage.tobytes()}, prefix="weird_name")
    legacy = {"t": tensor_op("0", 12, 1, (3, 2), (1, 4), legacy=True),
              "s": tensor_op("0", 12, 11, (), (), legacy=True)}
    write_torch_legacy(tmp_path / "b.pth", dict_pickle(legacy), {"0": (12, storage.tobytes())})
    for path in (tmp_path / "a.pth", tmp_path / "b.pth"):
        sd = load_weights(path)
        assert_bit_equal(sd["t"], want.copy())
        assert_bit_equal(sd["s"], np.array(11, dtype=np.float32))


def test_big_endian_and_bfloat16_records(tmp_path):
    bf16 = np.array([0x3F80, 0xC000, 0x7F80], dtype=">u2")         # 1.0, -2.0, inf as bfloat16
    entries = {"f": tensor_op("0", 2, 0, (2,), (1,), "DoubleStorage"),
               "b": tensor_op("1", 3, 0, (3,), (1,), "BFloat16Storage")}
    write_torch_zip(tmp_path / "be.pth", dict_pickle(entries),
                    {"0": np.array([1.5, -2.25], ">f8").tobytes(), "1": bf16.tobytes()}, byteorder="big")
    sd = load_weights(tmp_path / "be.pth")
    assert_bit_equal(sd["f"], np.array([1.5, -2.25]))
    assert_bit_equal(sd["b"], np.array([1.0, -2.0, np.inf], dtype=np.float32))


@pytest.mark.parametrize("numel, offset, size, stride, record_bytes, match", [
    (4, 0, (3, 3), (3, 1), 16, "storage shorter than claimed"),      # tensor reaches past storage
    (4, 3, (2,), (1,), 16, "storage shorter than claimed"),           # offset pushes it out
    (4, 0, (4,), (1,), 12, "holds 12 bytes"),                          # record shorter than numel
    (4, 0, (4,), (1,), 20, "holds 20 bytes"),                          # ... or longer
    (4, -1, (2,), (1,), 16, "bad tensor layout"),
    (4, 0, (2,), (-1,), 16, "bad tensor layout"),
    (4, 0, (2, 2), (1,), 16, "bad tensor layout"),
    (1, 0, (1 << 30, 1 << 20), (0, 0), 4, "expands that much"),   # stride-0 expansion bomb
])
def test_lying_tensor_records_raise(tmp_path, numel, offset, size, stride, record_bytes, match):
    pkl = dict_pickle({"w": tensor_op("0", numel, offset, size, stride)})
    write_torch_zip(tmp_path / "bad.pth", pkl, {"0": bytes(record_bytes)})
    with pytest.raises(WeightsError, match=match):
        load_weights(tmp_path / "bad.pth")


def test_missing_record_unknown_storage_and_bad_pid(tmp_path):
    write_torch_zip(tmp_path / "a.pth", dict_pickle({"w": tensor_op("0", 1, 0, (1,), (1,))}), {})
    with pytest.raises(WeightsError, match="missing"):
        load_weights(tmp_path / "a.pth")
    write_torch_zip(tmp_path / "b.pth", dict_pickle({"w": tensor_op("0", 1, 0, (1,), (1,), "QInt8Storage")}),
                    {"0": b"\0"})
    with pytest.raises(WeightsError, match="unsupported tensor type torch.QInt8Storage"):
        load_weights(tmp_path / "b.pth")
    bad_pid = pickle.PROTO + b"\x02" + _t(_s("module"), _i(1)) + pickle.BINPERSID + pickle.STOP
    write_torch_zip(tmp_path / "c.pth", bad_pid, {})
    with pytest.raises(WeightsError, match="persistent id"):
        load_weights(tmp_path / "c.pth")


def test_legacy_storage_size_must_match(tmp_path):
    pkl = dict_pickle({"w": tensor_op("0", 4, 0, (4,), (1,), legacy=True)})
    write_torch_legacy(tmp_path / "a.pth", pkl, {"0": (5, bytes(20))})
    with pytest.raises(WeightsError, match="the data says 5"):
        load_weights(tmp_path / "a.pth")
    write_torch_legacy(tmp_path / "b.pth", pkl, {"1": (4, bytes(16))})
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(tmp_path / "b.pth")


def test_compression_bomb_is_refused(tmp_path):
    numel = 1 << 20                                          # 4 MiB of zeros deflate to ~4 KiB
    with zipfile.ZipFile(tmp_path / "bomb.pth", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", dict_pickle({"w": tensor_op("0", numel, 0, (numel,), (1,))}))
        zf.writestr("archive/data/0", bytes(4 * numel))
    assert (tmp_path / "bomb.pth").stat().st_size < 100_000
    with pytest.raises(WeightsError, match="compression bomb"):
        load_weights(tmp_path / "bomb.pth")


def test_not_a_state_dict(tmp_path):
    write_torch_zip(tmp_path / "a.pth", pickle.dumps({"w": 3, "epoch": 1}, protocol=2), {})
    with pytest.raises(WeightsError, match="entry 'w' is a int"):
        load_weights(tmp_path / "a.pth")
    assert load_torch(tmp_path / "a.pth") == {"w": 3, "epoch": 1}
    cyclic = pickle.PROTO + b"\x02" + pickle.EMPTY_LIST + pickle.BINPUT + b"\0" + pickle.BINGET + b"\0" \
        + pickle.APPEND + pickle.STOP
    write_torch_zip(tmp_path / "b.pth", cyclic, {})
    with pytest.raises(WeightsError, match="nested deeper"):
        load_weights(tmp_path / "b.pth")


def test_plain_pickle_without_torch_magic_is_refused(tmp_path):
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=2))
    with pytest.raises(WeightsError, match="magic number"):
        load_weights(tmp_path / "p.pkl")


# ------------------------------------------------------------------ truncated / corrupt files

@pytest.mark.parametrize("name", ["sd_zip.pth", "sd_legacy.pth"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -1])
def test_truncated_files_raise(tmp_path, name, keep):
    raw = open(os.path.join(FIXTURES, name), "rb").read()
    cut = len(raw) - 1 if keep == -1 else int(len(raw) * keep)
    (tmp_path / name).write_bytes(raw[:cut])
    with pytest.raises(WeightsError):
        load_weights(tmp_path / name)


def test_corrupted_data_byte_fails_the_crc(tmp_path):
    raw = bytearray(open(os.path.join(FIXTURES, "sd_zip.pth"), "rb").read())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        at = zf.getinfo("archive/data/0").header_offset
    # A zip local header is 30 bytes, then the name and an extra field (their lengths at 26, 28).
    name_len, extra_len = struct.unpack("<HH", raw[at + 26:at + 30])
    start = at + 30 + name_len + extra_len                           # first byte of the record
    raw[start] ^= 0xFF
    (tmp_path / "flipped.pth").write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="CRC|corrupt"):
        load_weights(tmp_path / "flipped.pth")


@pytest.mark.parametrize("content", [b"", b"hello world, not weights", b"PK\x03\x04garbage"])
def test_unrecognised_files_raise(tmp_path, content):
    (tmp_path / "x.bin").write_bytes(content)
    with pytest.raises(WeightsError):
        load_weights(tmp_path / "x.bin")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "nope.pth")
