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
