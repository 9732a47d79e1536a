"""minires.weights.safetensors: read through the safetensors library (plus minires's checks), written by hand."""
import json
import os
import struct

import numpy as np
import pytest

from minires.weights import WeightsError, load_weights, read_safetensors, save_weights, write_safetensors

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")


def assert_bit_equal(got, want, name=""):
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype)
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), name


def raw_file(path, header, data=b"", header_len=None):
    """Write a safetensors file from a header dict (or raw bytes) and a data region, lies allowed."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def test_reads_the_reference_implementations_file():
    """reference.safetensors was written by the `safetensors` package itself (BF16, F16, I64, BOOL ...)."""
    with np.load(os.path.join(FIXTURES, "expected.npz"), allow_pickle=False) as npz:
        expected = {k: npz[k] for k in npz.files}
    arrays, metadata = read_safetensors(os.path.join(FIXTURES, "reference.safetensors"))
    assert metadata == {"format": "pt", "by": "minires"}
    assert set(arrays) == set(expected)
    for k, want in expected.items():
        assert_bit_equal(arrays[k], want, k)


def test_round_trip_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "f64": rng.standard_normal((2, 3)), "f32": rng.standard_normal(5).astype(np.float32),
        "f16": np.array([np.inf, -0.0, 6e-8], dtype=np.float16),
        "i64": np.array([-2 ** 63, 2 ** 63 - 1]), "i32": np.arange(-3, 3, dtype=np.int32),
        "i16": np.array([[-1]], dtype=np.int16), "i8": np.array([-128, 127], dtype=np.int8),
        "u8": np.array([0, 255], dtype=np.uint8), "u16": np.array([65535], dtype=np.uint16),
        "bool": np.array([True, False]), "c64": np.array([1 + 2j], dtype=np.complex64),
        "scalar": np.array(2.5, dtype=np.float32), "empty": np.zeros((0, 4), dtype=np.float32),
        "transposed": np.arange(6.0).reshape(2, 3).T,                      # not contiguous
        "big_endian": np.arange(4, dtype=">i4"),                          # stored little-endian
    }
    path = tmp_path / "w.safetensors"
    write_safetensors(path, arrays, {"epoch": "3"})
    got, metadata = read_safetensors(path)
    assert metadata == {"epoch": "3"} and list(got) == list(arrays)
    for k, a in arrays.items():
        assert_bit_equal(got[k], a.astype(a.dtype.newbyteorder("=")), k)
    assert got["big_endian"].dtype.isnative


def test_written_layout_follows_the_spec(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"a": np.ones(3, np.float32), "b": np.arange(2, dtype=np.int64)})
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert (8 + n) % 8 == 0                                        # data region 8-byte aligned
    header = json.loads(raw[8:8 + n])
    assert header == {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                      "b": {"dtype": "I64", "shape": [2], "data_offsets": [12, 28]}}
    assert raw[8 + n:] == np.ones(3, "<f4").tobytes() + np.arange(2, dtype="<i8").tobytes()


def test_bfloat16_is_widened_exactly(tmp_path):
    bits = np.array([0x3F80, 0xBF00, 0x7F7F, 0x0001], dtype="<u2")     # 1, -0.5, max, tiny subnormal
    path = raw_file(tmp_path / "b.safetensors",
                    {"b": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}, bits.tobytes())
    want = (bits.astype(np.uint32) << 16).view(np.float32)
    assert_bit_equal(load_weights(path)["b"], want)
    assert want[0] == 1.0 and want[1] == -0.5


def test_save_and_load_weights_choose_format(tmp_path):
    sd = {"module.w": np.ones((2, 2), np.float32)}
    save_weights(tmp_path / "m.safetensors", sd)
    assert list(load_weights(tmp_path / "m.safetensors")) == ["w"]            # DataParallel prefix gone
    with pytest.raises(ValueError, match="by extension"):
        save_weights(tmp_path / "m.pth", sd)


# The library's words for each lie (it reads the header); minires adds dtype, rank and size checks.
@pytest.mark.parametrize("header, data, match", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "not fully covered"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12, "not fully covered"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "invalid offset"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "invalid offset"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "invalid shape"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "invalid offset"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, b"\0" * 8, "expected usize"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "expected usize"),
    ({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2, "unsupported dtype"),
    ({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "missing field `data_offsets`"),
    ({"__metadata__": {"n": 3}}, b"", "expected a string"),
    ([1, 2], b"", "invalid type: sequence"),
    ({"a": {"dtype": "F32", "shape": [0, 2 ** 62], "data_offsets": [0, 0]}}, b"", "exceeds 2\\*\\*63 bytes"),
    ({"a": {"dtype": "U8", "shape": [1] * 65, "data_offsets": [0, 1]}}, b"\0", "65 dimensions"),
    ({"a": {"dtype": "F32", "shape": [int("9" * 4299)], "data_offsets": [0, 4]}}, b"\0" * 4, "out of range"),
])
def test_lying_headers_raise(tmp_path, header, data, match):
    path = raw_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(WeightsError, match=match):
        read_safetensors(path)
    with pytest.raises(WeightsError):
        load_weights(path)


def test_duplicate_names_and_bad_json_raise(tmp_path):
    dup = b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, ' \
          b'"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    with pytest.raises(WeightsError, match="twice"):           # the library lets the last one win
        read_safetensors(raw_file(tmp_path / "d.safetensors", dup, b"\0"))
    with pytest.raises(WeightsError, match="invalid JSON"):
        read_safetensors(raw_file(tmp_path / "j.safetensors", b"{not json", b""))


def test_oversized_or_truncated_header_raises(tmp_path):
    with pytest.raises(WeightsError, match="header too large"):
        read_safetensors(raw_file(tmp_path / "big.safetensors", b"{}", header_len=200_000_000))
    with pytest.raises(WeightsError, match="invalid header length"):
        read_safetensors(raw_file(tmp_path / "short.safetensors", b"{}", header_len=1000))
    (tmp_path / "tiny.safetensors").write_bytes(b"\x02\0\0")
    with pytest.raises(WeightsError, match="header too small"):
        read_safetensors(tmp_path / "tiny.safetensors")


def test_zero_size_tensors_and_order(tmp_path):
    path = raw_file(tmp_path / "z.safetensors",
                    {"b": {"dtype": "F32", "shape": [0, 1 << 40], "data_offsets": [4, 4]},
                     "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    arrays, _ = read_safetensors(path)
    assert list(arrays) == ["a", "b"]                             # the order of the data
    assert arrays["b"].shape == (0, 1 << 40) and arrays["b"].dtype == np.float32


def test_writer_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        write_safetensors(tmp_path / "o.safetensors", {"o": np.array([None, 1], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        write_safetensors(tmp_path / "r.safetensors", {"__metadata__": np.ones(1)})
    with pytest.raises(TypeError, match="str -> str"):
        write_safetensors(tmp_path / "m.safetensors", {"a": np.ones(1)}, {"epoch": 3})
    with pytest.raises(TypeError, match="must be an array"):
        write_safetensors(tmp_path / "l.safetensors", {"a": [1.0, 2.0]})
    assert list(tmp_path.iterdir()) == []                 # nothing, not even a temporary file
