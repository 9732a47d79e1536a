"""The hostile-file corpus (tools/make_hostile_corpus.py): every file ends in a WeightsError
(or loads, for the few valid-but-unusual ones), within 2 s, with bounded memory, and no
payload ever runs.

The files are loaded in a worker process (tools/corpus_check.py), so that a crash
(SIGSEGV) or a hang in C code is seen and named instead of killing or stalling the test
run. Memory bound per file: 48 MiB + 8 x the file's size, measured both as tracemalloc's
peak and as the growth of the worker's peak resident memory (Linux).
"""
import json
import os
import sys

import pytest

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
sys.path.insert(0, TOOLS)
import corpus_check  # noqa: E402
import make_hostile_corpus  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("hostile"))
    make_hostile_corpus.write_corpus(folder)
    return folder


@pytest.fixture(scope="module")
def results(corpus):
    return corpus_check.check_corpus(corpus)


def test_the_corpus_holds_every_attack_of_the_issue(corpus):
    names = {e["file"] for e in json.load(open(os.path.join(corpus, "manifest.json")))}
    for attack in ["deep-tuple-key.pth", "memo-2-27.pkl", "zero-stride-40.pth", "huge-int-sizes.pth",
                   "huge-digit-shapes.safetensors", "deflate-bomb.npz", "big-endian.npz", "fortran.npz",
                   "unicode.npz", "structured.npz", "datetime.npz", "deep-json.npz", "text.npz",
                   "zero-size-huge-dim.safetensors", "storage-key-traversal.pth", "deflate-bomb.pth"]:
        assert attack in names, attack
    assert sum(n.startswith("exec-") for n in names) >= 60            # the refused payloads
    assert all(os.path.getsize(os.path.join(corpus, n)) < 4 << 20 for n in names)   # small files


def test_no_crash_no_hang_only_weights_errors_in_time_and_memory(results):
    print("\n" + corpus_check.summarise(results))
    bad = [r for r in results if not r["ok"]]
    assert not bad, corpus_check.summarise(results)
    for r in results:
        assert not r.get("crash") and not r.get("hang"), r
        assert r["seconds"] < corpus_check.TIME_LIMIT, r
        assert max(r["traced"], r["rss"] or 0) < corpus_check.memory_bound(r["size"]), r
        if r["expect"] == "error":
            assert r["error"] == "WeightsError", r


def test_no_payload_ran(corpus, results):
    assert len(results) > 200
    assert not [n for n in os.listdir(corpus) if n.startswith("MARKER")]


def test_the_unusual_valid_files_load_as_native_c_order_copies(corpus):
    from minires.weights import load_checkpoint
    import numpy as np
    be = load_checkpoint(os.path.join(corpus, "big-endian.npz"))[0]["w"]
    assert be.dtype == np.float32 and be.dtype.isnative and be.flags.c_contiguous
    np.testing.assert_array_equal(be, np.arange(6).reshape(2, 3))
    fo = load_checkpoint(os.path.join(corpus, "fortran.npz"))[0]["w"]
    assert fo.flags.c_contiguous and fo.flags.writeable
    np.testing.assert_array_equal(fo, np.arange(6.0).reshape(2, 3, order="F"))


@pytest.mark.parametrize("name, match", [
    ("deep-tuple-key.pth", "more than 64 levels deep"),
    ("memo-2-27.pkl", "memo index 134217728"),
    ("zero-stride-40.pth", "refusing a file that expands that much"),
    ("huge-int-sizes.pth", "an int of 8388607 bits"),
    ("huge-digit-shapes.safetensors", "safetensors library says"),
    ("deflate-bomb.npz", "declares 67108992 bytes"),
    ("unicode.npz", "not a number type"),
    ("deep-json.npz", "nests too deeply"),
    ("text.npz", "not a minires checkpoint.*it starts with b.epoc.*looks like text"),
])
def test_the_messages_say_what_is_wrong(corpus, name, match):
    from minires.weights import WeightsError, load_checkpoint, load_weights
    load = load_checkpoint if name.endswith(".npz") else load_weights
    with pytest.raises(WeightsError, match=match):
        load(os.path.join(corpus, name))


# ------------------------------------------------------------------ Keras weight files (HDF5), issue 23
HDF5_ATTACKS = {                      # file -> what its WeightsError must say
    "external-etc-passwd.h5": "keeps its values in an external file .'/etc/passwd'.",
    "external-beside.h5": "keeps its values in an external file",
    "external-fifo.h5": "keeps its values in an external file",
    "vds-other.h5": "is a virtual dataset",
    "vds-self.h5": "is a virtual dataset",
    "extlink-other.h5": "'moving_mean' is an external link",
    "extlink-fifo.h5": "'moving_mean' is an external link",
    "extlink-group.h5": "'conv1_bn' is an external link",
    "softlink-cycle.h5": "'moving_mean' is a soft link",
    "softlink-elsewhere.h5": "is a soft link",
    "gzip-bomb.h5": "chunk 0 stores 1043.* bytes for 256 decoded",
    "gzip-bomb-small.h5": "decodes to more than the chunk's 256 bytes",
    "null-dataspace.h5": "is empty .a null dataspace.",
    "float64-1e300.h5": r"'conv1_bn' moving_mean \(the model's bn1.running_mean\) holds non-finite values as float32",
    "layer-names-ints.h5": "attribute 'layer_names' holds int64, not names",
    "layer-names-missing.h5": "lists 'no_such_layer' but the file has no group",
    "recursive-group.h5": "layers nested more than 32 deep|more than 4000 layer groups",
    "many-links.h5": "100000 entries in one group; at most 10000",
    "fletcher32.h5": "compressed with fletcher32; only deflate .gzip., shuffle and lzf are read",
    "fifo": r"a FIFO \(named pipe\), not a weights file",
    "dev-zero.h5": "a device, not a weights file",
    "folder.h5": "a folder, not a weights file",
    "truncated-half.h5": "corrupt or truncated HDF5 file",
    "superblock-eof-huge.h5": "corrupt or truncated HDF5 file",
}


def test_the_corpus_holds_every_hdf5_attack_of_issue_23(corpus):
    pytest.importorskip("h5py", reason="the Keras files of the corpus need h5py (pip install h5py)")
    manifest = json.load(open(os.path.join(corpus, "manifest.json")))
    keras = {e["file"] for e in manifest if e["loader"] == "keras"}
    assert set(HDF5_ATTACKS) <= keras
    assert len(keras) >= 50


@pytest.mark.parametrize("name", sorted(HDF5_ATTACKS))
def test_hdf5_messages_say_what_is_wrong(corpus, results, name):
    pytest.importorskip("h5py", reason="the Keras files of the corpus need h5py (pip install h5py)")
    (r,) = [r for r in results if r["file"] == name]
    assert r["error"] == "WeightsError" and r["ok"], r
    assert r["message"].startswith(os.path.join(corpus, name) + ": "), r["message"]
    import re
    assert re.search(HDF5_ATTACKS[name], r["message"]), r["message"]


def test_nothing_outside_the_file_is_ever_read(corpus, results):
    """The secret beside the crafted files would be the model's weights if any link were followed:
    every file that points at it (or at /etc/passwd, a FIFO, another HDF5 file) is refused
    before a byte of it is read, and the FIFO's writer end never opened."""
    pytest.importorskip("h5py", reason="the Keras files of the corpus need h5py (pip install h5py)")
    outside = [r for r in results if r["file"].startswith(("external-", "vds-", "extlink-"))]
    assert len(outside) >= 8
    assert all(r["error"] == "WeightsError" and r["seconds"] < 0.5 for r in outside), outside


def test_the_valid_unusual_hdf5_files_load_their_values(corpus):
    """gzip+shuffle, lzf+shuffle, chunks overhanging the end, big-endian, float16: decoded by
    minires (not by HDF5's filters) into the very values written."""
    pytest.importorskip("h5py", reason="the Keras files of the corpus need h5py (pip install h5py)")
    import numpy as np
    import hostile_hdf5
    for name in ("gzip-shuffle.h5", "lzf.h5", "chunked-edges.h5", "big-endian.h5", "float16.h5"):
        model = hostile_hdf5.load_into_tiny(os.path.join(corpus, name))
        want = np.linspace(-1, 1, 64, dtype=np.float32)
        if name == "float16.h5":
            want = want.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(model.bn1.running_mean, want, err_msg=name)


def test_byte_mutated_keras_files_load_or_refuse_without_crash_or_hang(tmp_path):
    """Flips, hostile 8-byte splices and cuts of both Keras-written files reach libhdf5's own
    parser (C): run in the worker process, each must load or end in a WeightsError, in time
    and bounded memory (a vlen string that lies about its length was 4 GiB and 10 s before)."""
    pytest.importorskip("h5py", reason="the Keras files need h5py (pip install h5py)")
    import hostile_hdf5
    entries = []
    hostile_hdf5.write_hdf5_mutants(str(tmp_path), entries, count=int(os.environ.get("MINIRES_FUZZ_EXAMPLES", 40)))
    json.dump([dict(file=f, loader=loader, expect=e, what=w) for f, loader, e, w in entries],
              open(tmp_path / "manifest.json", "w"))
    results = corpus_check.check_corpus(str(tmp_path))
    print("\n" + corpus_check.summarise(results))
    assert all(r["ok"] for r in results), corpus_check.summarise(results)
    assert {r["error"] for r in results} == {None, "WeightsError"}      # the mutations reach the checks


def test_the_corpus_holds_the_tensorflow_checkpoints_of_issue_24(corpus, results):
    """tools/hostile_tf_checkpoint.py: each crafted checkpoint is refused by read_tf_checkpoint."""
    tf = [r for r in results if any(e["file"] == r["file"] and e["loader"] == "tf-checkpoint"
                                     for e in json.load(open(os.path.join(corpus, "manifest.json"))))]
    assert len(tf) >= 30
    assert all(r["ok"] and r["error"] == "WeightsError" for r in tf), [r for r in tf if not r["ok"]]
