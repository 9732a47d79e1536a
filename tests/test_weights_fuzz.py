"""Fuzzing the readers: valid small .pth (zip and legacy), .safetensors and .npz files,
mutated by hypothesis (byte flips, truncation, header edits), must each load or raise a
WeightsError -- nothing else -- within 2 s and with peak traced memory growth under
48 MiB + 8 x the file's size (the corpus test's bound).

The examples are bounded (``max_examples`` per format), derandomized and not shrunk, so the
test takes a few seconds and fails the same way on every run. Header edits go *inside* the
container (the pickle in a zip, the .npy header in an npz, the JSON of a safetensors file)
and the container is rebuilt around them, so they reach the parsers instead of stopping
at a zip CRC check.
"""
import io
import json
import os
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (pip install hypothesis, or pip install -e \".[test]\" from the checkout)")
from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402

from minires.weights import WeightsError, load_checkpoint, load_weights, save_checkpoint, write_safetensors  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "weights")
TIME_LIMIT = 2.0
EXAMPLES = int(os.environ.get("MINIRES_FUZZ_EXAMPLES", 40))   # more for a longer local run
# No shrinking phase: a failure is reported as drawn (shrinking a zip can take minutes).
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))


def small_arrays():
    rng = np.random.default_rng(0)
    return {"conv.weight": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
            "bn.num_batches_tracked": np.array(3, np.int64), "fc.bias": np.arange(5, dtype=np.float16)}


def valid_files(folder):
    files = {name: open(os.path.join(FIXTURES, name), "rb").read() for name in ("sd_zip.pth", "sd_legacy.pth")}
    write_safetensors(os.path.join(folder, "w.safetensors"), small_arrays(), {"epoch": "3"})
    save_checkpoint(os.path.join(folder, "w.npz"), small_arrays(), {"epoch": 3, "history": [1.5]})
    for name in ("w.safetensors", "w.npz"):
        files[name] = open(os.path.join(folder, name), "rb").read()
    return files


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    return valid_files(str(tmp_path_factory.mktemp("valid")))


def flip(raw, data):
    if not raw:
        return raw
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        i = data.draw(st.integers(0, len(raw) - 1), label="at")
        raw[i] ^= data.draw(st.integers(1, 255), label="xor")
    return bytes(raw)


def truncate(raw, data):
    if not raw:
        return raw
    return raw[:data.draw(st.integers(0, len(raw) - 1), label="cut")]


def splice(raw, data):
    """Overwrite a few bytes with hostile numbers: 0xff.., a huge length, a negative int."""
    if not raw:
        return raw
    at = data.draw(st.integers(0, len(raw) - 1), label="at")
    chunk = data.draw(st.sampled_from([b"\xff" * 8, b"\x7f\xff\xff\xff", struct.pack("<q", -1),
                                       struct.pack("<Q", 1 << 62), b"\x00" * 8, b"(((((((("]), label="chunk")
    return raw[:at] + chunk + raw[at + len(chunk):]


def rezip(raw, member_filter, data):
    """Rebuild a zip, mutating the members member_filter picks (so the CRCs stay right)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if member_filter(info.filename):
                body = data.draw(st.sampled_from([flip, truncate, splice]), label="edit")(body, data)
            dst.writestr(info.filename, body)
    return out.getvalue()


def edit_safetensors_header(raw, data):
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")), label="entry")
    field = data.draw(st.sampled_from(["shape", "data_offsets", "dtype"]), label="field")
    if field == "dtype":
        header[name]["dtype"] = data.draw(st.sampled_from(["F32", "BF16", "F8_E4M3", "U8", "X", ""]))
    else:
        values = header[name][field]
        values = values + [1] if data.draw(st.booleans(), label="grow") else values
        i = data.draw(st.integers(0, max(len(values) - 1, 0)), label="i")
        big = st.one_of(st.integers(-2, 2 ** 64 + 1), st.just(10 ** 4000), st.just(2 ** 62))
        values = [data.draw(big, label="value") if j == i else v for j, v in enumerate(values)]
        header[name][field] = values
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]


MUTATIONS = {
    "sd_zip.pth": lambda raw, data: data.draw(st.sampled_from([
        lambda r, d: flip(r, d), lambda r, d: truncate(r, d),
        lambda r, d: rezip(r, lambda name: name.endswith("data.pkl"), d),
        lambda r, d: rezip(r, lambda name: "/data/" in name, d)]), label="how")(raw, data),
    "sd_legacy.pth": lambda raw, data: data.draw(st.sampled_from([flip, truncate, splice]), label="how")(raw, data),
    "w.safetensors": lambda raw, data: data.draw(st.sampled_from([flip, truncate, splice, edit_safetensors_header]),
                                                 label="how")(raw, data),
    "w.npz": lambda raw, data: data.draw(st.sampled_from([
        lambda r, d: flip(r, d), lambda r, d: truncate(r, d),
        lambda r, d: rezip(r, lambda name: True, d)]), label="how")(raw, data),
}


def load_bounded(path, loader):
    """Load; return the outcome after asserting: only WeightsError, in time, in bounded memory."""
    size = os.path.getsize(path)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        loader(path)
        outcome = "loaded"
    except WeightsError:
        outcome = "refused"
    finally:
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < TIME_LIMIT, (path, seconds)
    assert peak < (48 << 20) + 8 * size, (path, peak)
    return outcome


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutated_files_only_ever_raise_weights_error(name, originals, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    loader = load_checkpoint if name.endswith(".npz") else load_weights
    with open(os.path.join(folder, "original-" + name), "wb") as f:
        f.write(originals[name])
    assert load_bounded(os.path.join(folder, "original-" + name), loader) == "loaded"
    outcomes = []

    @SETTINGS
    @given(data=st.data())
    def fuzz(data):
        raw = MUTATIONS[name](originals[name], data)
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(raw)
        outcomes.append(load_bounded(path, loader))

    fuzz()
    assert len(outcomes) >= EXAMPLES // 2
    assert "refused" in outcomes                      # the mutations do reach the checks


# ------------------------------------------------------------------ Keras weight files (HDF5), issue 23
KERAS_FILES = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "files")
HOSTILE_VALUES = [1e300, -1e300, float("nan"), float("inf"), 1e-45, 0.0]


def edit_hdf5(path, data):
    """One structural lie, drawn by hypothesis, told through h5py in a Keras-written file: a
    weight's shape, dtype, values, storage (chunks, filters, raw chunk bytes), a link where a
    weight belongs, a lying attribute, or something deleted. Byte-level mutations reach
    libhdf5's parser instead; they run in a worker process (test_weights_hostile.py)."""
    import h5py
    with h5py.File(path, "r+") as f:
        datasets, groups = [], []
        f.visititems(lambda n, o: (datasets if isinstance(o, h5py.Dataset) else groups).append(n))
        name = data.draw(st.sampled_from(sorted(datasets)), label="dataset")
        value = f[name][()]
        edit = data.draw(st.sampled_from(["shape", "dtype", "values", "chunks", "link", "attribute", "delete"]),
                         label="edit")
        if edit == "shape":
            shape = data.draw(st.lists(st.integers(0, 80), max_size=4), label="shape")
            del f[name]
            f.create_dataset(name, shape=tuple(shape), dtype="<f4")
        elif edit == "dtype":
            dtype = data.draw(st.sampled_from(["<f2", ">f4", "<f8", "<i4", "u1", "?", "<c8", ">f8"]), label="dtype")
            del f[name]
            f.create_dataset(name, data=value.astype(dtype))
        elif edit == "values":
            v = data.draw(st.sampled_from(HOSTILE_VALUES), label="value")
            value = value.astype(np.float64)
            value.reshape(-1)[data.draw(st.integers(0, max(value.size - 1, 0)), label="at")] = v
            del f[name]
            f.create_dataset(name, data=value)
        elif edit == "chunks":
            chunks = tuple(data.draw(st.integers(1, max(n, 1)), label="chunk") for n in value.shape) or None
            compression = data.draw(st.sampled_from([None, "gzip", "lzf"]), label="compression")
            del f[name]
            ds = f.create_dataset(name, data=value, chunks=chunks if value.shape else None,
                                  compression=compression if value.shape else None,
                                  shuffle=bool(value.shape) and data.draw(st.booleans(), label="shuffle"))
            if value.shape and data.draw(st.booleans(), label="raw chunk"):
                ds.id.write_direct_chunk((0,) * value.ndim, data.draw(st.binary(min_size=1, max_size=300), label="bytes"),
                                         filter_mask=data.draw(st.integers(0, 3), label="mask"))
        elif edit == "link":
            del f[name]
            f[name] = data.draw(st.sampled_from([
                h5py.SoftLink("/" + data.draw(st.sampled_from(sorted(datasets)), label="to")),
                h5py.SoftLink("/nowhere"), h5py.ExternalLink("/etc/passwd", "/x"),
                h5py.ExternalLink(path, "/" + name)]), label="link")
        elif edit == "attribute":
            holders = [g for g in ["", *groups] if any(k in f[g or "/"].attrs for k in ("layer_names", "weight_names", "name"))]
            holder = f[data.draw(st.sampled_from(holders), label="holder") or "/"]
            key = next(k for k in ("layer_names", "weight_names", "name") if k in holder.attrs)
            holder.attrs[key] = data.draw(st.one_of(
                st.lists(st.text(max_size=40).map(str.encode), max_size=5).map(lambda v: np.array(v, dtype="S")),
                st.lists(st.integers(-5, 5), min_size=1, max_size=5).map(np.array),
                st.just(h5py.Empty("S4")), st.just(np.array([b"x" * 600]))), label="value")
        else:
            target = data.draw(st.sampled_from([name, name.rsplit("/", 1)[0]]), label="delete")
            del f[target]


@pytest.mark.parametrize("name", ["tiny_v1_legacy.h5", "tiny_v1.weights.h5"])
def test_keras_files_with_structural_lies_only_ever_raise_weights_error(name, tmp_path):
    pytest.importorskip("h5py", reason="the Keras reader needs h5py (pip install h5py)")
    import shutil
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
    from hostile_hdf5 import load_into_tiny
    original = os.path.join(KERAS_FILES, name)
    assert load_bounded(original, load_into_tiny) == "loaded"
    outcomes = []

    @SETTINGS
    @given(data=st.data())
    def fuzz(data):
        path = str(tmp_path / name)
        shutil.copy(original, path)
        edit_hdf5(path, data)
        outcomes.append(load_bounded(path, load_into_tiny))

    fuzz()
    assert len(outcomes) >= EXAMPLES // 2
    assert "refused" in outcomes and "loaded" in outcomes      # the lies reach the checks, and some are harmless
