"""TensorFlow checkpoints read without TensorFlow (minires.weights.tf_checkpoint).

* real files written by TensorFlow 2.21 (tools/make_tf_checkpoint_fixtures.py) read equal to
  TensorFlow's own reading of them, from every path form TensorFlow accepts;
* crafted files (tools/hostile_tf_checkpoint.py's encoder), each wrong in one place, are each
  refused with a WeightsError that names the file and says what is wrong; so are FIFOs and a
  ``checkpoint`` file naming a path outside its folder;
* CRC32C: known vectors, and the fast NumPy version equal to the plain loop;
* fuzzing: mutated indexes and data shards only ever raise WeightsError, in time and memory.
"""
import os
import re
import shutil
import sys

import numpy as np
import pytest

from minires.weights import WeightsError
from minires.weights import crc32c as crc
from minires.weights.common import OutputBudget
from minires.weights import tf_checkpoint
from minires.weights.tf_checkpoint import Entry, TFCheckpoint, read_tf_checkpoint, resolve_checkpoint
from minires.weights.wire import message, snappy_decompress, varint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import hostile_tf_checkpoint as enc  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tf_checkpoint")
EXPECTED = np.load(os.path.join(FIXTURES, "expected.npz"))


# ------------------------------------------------------------------ CRC32C
def test_crc32c_known_vectors():
    for f in (crc.crc32c, crc.crc32c_plain):
        assert f(b"") == 0
        assert f(b"123456789") == 0xE3069283
        assert f(bytes(32)) == 0x8A9136AA                    # RFC 3720 (iSCSI), B.4
        assert f(b"\xff" * 32) == 0x62A8AB43
        assert f(bytes(range(32))) == 0x46DD794E
        assert f(b"6789", f(b"12345")) == 0xE3069283        # continued
    assert crc.unmask(crc.mask(0xE3069283)) == 0xE3069283 and crc.mask(0) == 0xA282EAD8


def test_fast_crc32c_equals_the_plain_loop(monkeypatch):
    monkeypatch.setattr(crc, "WINDOW", 1 << 16)              # several windows without megabytes of plain loop
    rng = np.random.default_rng(3)
    for n in [0, 1, 3, 4, 5, 4095, 4096, 4097, 6000, 65535, 65536, 65537, 200_001]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        for start in (0, 0xFFFFFFFF, int(rng.integers(0, 2 ** 32))):
            assert crc.crc32c(data, start) == crc.crc32c_plain(data, start), (n, start)
    a = rng.standard_normal((64, 33)).astype(np.float32)   # arrays are read as their bytes
    assert crc.crc32c(a) == crc.crc32c_plain(a.tobytes())


# ------------------------------------------------------------------ real files, written by TensorFlow
@pytest.mark.parametrize("folder", ["vars", "keras", "sharded"])
def test_real_checkpoints_read_as_tensorflow_reads_them(folder):
    got = read_tf_checkpoint(os.path.join(FIXTURES, folder, "x.ckpt"))
    want = {k.split("/", 1)[1]: EXPECTED[k] for k in EXPECTED.files if k.startswith(folder + "/")}
    assert list(got) == sorted(want) and want
    for key, a in got.items():
        assert a.dtype == want[key].dtype and a.shape == want[key].shape, key
        np.testing.assert_array_equal(a, want[key], err_msg=key)
        assert a.flags.c_contiguous and a.dtype.isnative and a.flags.writeable


def test_the_listing_comes_first_and_says_everything():
    with TFCheckpoint(os.path.join(FIXTURES, "vars", "x.ckpt.index")) as ckpt:
        e = ckpt.entries
        assert list(e) == sorted(e) and ckpt.num_shards == 1 and ckpt._files == {}   # nothing read yet
        assert e["_CHECKPOINTABLE_OBJECT_GRAPH"].dtype is None
        assert e["_CHECKPOINTABLE_OBJECT_GRAPH"].tf_dtype == "string"
        bf16 = e["bf16/.ATTRIBUTES/VARIABLE_VALUE"]
        assert bf16 == Entry(np.dtype(np.float32), (5,), 0, bf16.offset, 10, bf16.crc32c, "bfloat16")
        assert e["scale/.ATTRIBUTES/VARIABLE_VALUE"].shape == ()
        assert e["empty/.ATTRIBUTES/VARIABLE_VALUE"].shape == (0, 3)
        assert e["half/.ATTRIBUTES/VARIABLE_VALUE"].dtype == np.float16
        with pytest.raises(WeightsError, match="is a string tensor"):
            ckpt.read("_CHECKPOINTABLE_OBJECT_GRAPH")
        budget = OutputBudget(0, slack=100)
        with pytest.raises(WeightsError, match="would bring the output past 100 bytes"):
            ckpt.read("conv/.ATTRIBUTES/VARIABLE_VALUE", budget)
        np.testing.assert_array_equal(ckpt.read("steps/.ATTRIBUTES/VARIABLE_VALUE", budget),
                                      EXPECTED["vars/steps/.ATTRIBUTES/VARIABLE_VALUE"])
    assert ckpt._files == {}                                                       # closed


def test_every_path_form_tensorflow_accepts(tmp_path):
    folder = os.path.join(FIXTURES, "keras")
    prefix = os.path.join(folder, "x.ckpt")
    for given in [prefix, prefix + ".index", prefix + ".data-00000-of-00001", folder,
                  os.path.join(folder, "checkpoint")]:
        assert resolve_checkpoint(given) == (prefix, prefix + ".index"), given
    assert resolve_checkpoint(os.path.join(folder, "")) == (os.path.join(folder, "x.ckpt"),
                                                            os.path.join(folder, "x.ckpt.index"))
    want = read_tf_checkpoint(prefix)
    copy = shutil.copytree(folder, tmp_path / "k")                       # a `checkpoint` file with escapes
    (copy / "checkpoint").write_text('model_checkpoint_path: "x\\056ckpt"\n')
    got = read_tf_checkpoint(str(copy))
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_missing_files_are_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="x.ckpt.index"):
        read_tf_checkpoint(str(tmp_path / "x.ckpt"))
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        read_tf_checkpoint(str(tmp_path))
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "y.ckpt"\n')
    with pytest.raises(FileNotFoundError, match="y.ckpt.index"):
        read_tf_checkpoint(str(tmp_path))


def test_a_sliced_tensor_written_by_tensorflow_is_refused():
    with pytest.raises(WeightsError, match=r"x.ckpt.index: 'b/.ATTRIBUTES/VARIABLE_VALUE' is saved in slices"):
        TFCheckpoint(os.path.join(FIXTURES, "sliced", "x.ckpt"))


# ------------------------------------------------------------------ crafted files
MESSAGES = {   # attack -> what the WeightsError must say (after the file's name)
    "bad-magic": "not a TensorFlow checkpoint index: its last 8 bytes are not the sorted string table's magic",
    "bad-block-crc": r"the block at 0 has CRC32C 0x[0-9a-f]{8}, its trailer says",
    "truncated-index": "magic number",
    "index-handle-past-end": r"index block: a block at 65535 of 16 bytes \(\+5\): outside",
    "one-of-many-blocks": "has CRC32C",
    "unsorted-keys": "keys out of order",
    "duplicate-key": r"keys out of order: b'step' after b'step'",
    "no-header": "the first key b'_CHECKPOINTABLE_OBJECT_GRAPH'; a checkpoint index starts with its header",
    "empty-table": "no records; a checkpoint index starts with its header",
    "key-too-long": "keys of <= 4096 bytes",
    "not-utf8-key": "is not UTF-8",
    "slice-key": "'conv/kernel' is saved in slices",
    "slice-entry": "entry 'conv/kernel' is a partitioned variable saved in 2 slices",
    "huge-shape": "exceeds 2\\*\\*63 bytes",
    "negative-dim": r"every dimension must be an int in \[0, 2\*\*63\), got -1",
    "many-dims": "dim repeated more than 1024 times",
    "size-mismatch": r"float32 of shape \[3, 3, 2, 4\] takes 288 bytes; the entry says 4",
    "offset-past-shard": r"bytes \[343, 631\) lie past the end of .*data-00000-of-00001 \(343 bytes\)",
    "offset-huge": "lie past the end",
    "offset-negative": "offset -8; a shard in",
    "shard-id-too-big": r"shard 5 of 1, offset 0; a shard in \[0, 1\)",
    "unknown-dtype": "TensorFlow dtype number 999; supported: float32",
    "resource-dtype": "TensorFlow dtype number 20;",
    "overlong-varint": "varint longer than 10 bytes",
    "field-claims-more": "field 2 claims 268435455 bytes, 0 are left",
    "group-wire-type": "wire type 3",
    "num-shards-zero": "num_shards is 0; 1 to 10000 expected",
    "num-shards-huge": "num_shards is 2147483647",
    "big-endian": "a big-endian bundle",
    "newer-version": "written for readers of bundle version >= 7",
    "data-crc-mismatch": r"data-00000-of-00001: 'head/bias': the 10 bytes at offset 333 have CRC32C 0x[0-9a-f]{8}; "
                         "the index says",
    "snappy-declares-4gib": "snappy data declares 4294967295 bytes; at most 4194304",
    "snappy-copy-before-start": "a snappy copy of 1 bytes from 64 back, with 0 of",
    "snappy-literal-overrun": "a snappy literal runs past",
    "same-bytes-100-times": "'t020' would bring the output past 20971520 bytes",
    "shard-missing": r"its data shard .*data-00001-of-00002 is missing",
    "checkpoint-file-traversal": r"checkpoint: model_checkpoint_path '../../etc/passwd' must be a relative name",
    "checkpoint-file-absolute": r"checkpoint: model_checkpoint_path '/etc/passwd' must be a relative name",
    "checkpoint-file-dotdot-inside": "must be a relative name inside",
}


@pytest.fixture(scope="module")
def attacks(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tf-attacks"))
    entries = []
    enc.write_tf_checkpoint_attacks(out, entries)
    return out, entries


def test_every_crafted_file_is_refused_saying_what_is_wrong(attacks):
    out, entries = attacks
    assert {name.split(".ckpt")[0][3:] for name, *_ in entries} == set(MESSAGES)
    for name, loader, expect, what in entries:
        assert (loader, expect) == ("tf-checkpoint", "error")
        with pytest.raises(WeightsError) as e:
            read_tf_checkpoint(os.path.join(out, name))
        said = str(e.value)
        assert said.startswith(out + os.sep), (name, said)                # names the file at fault
        assert re.search(MESSAGES[name.split(".ckpt")[0][3:]], said), (name, said)
        assert "\n" not in said and len(said) < 400, said


def test_the_encoder_writes_what_the_reader_reads(tmp_path):
    records, shards = enc.bundle(enc.small_tensors(), num_shards=2)
    for args in [{}, {"per_block": 1}, {"compression": 1}, {"compression": 1, "per_block": 2}]:
        index = enc.write(str(tmp_path / "c.ckpt"), records, shards, **args)
        got = read_tf_checkpoint(index)
        for key, a in enc.small_tensors().items():
            np.testing.assert_array_equal(got[key], a)
        assert list(got) == sorted(enc.small_tensors())


def test_snappy_copies_overlap_and_are_checked():
    # "ab", then a copy of 8 bytes from 2 back (overlapping: the pattern repeats), then "!"
    assert snappy_decompress(b"\x0b\x04ab\x11\x02\x00!", "t", 100) == b"ababababab!"
    assert snappy_decompress(b"\x03\x08abc", "t", 100) == b"abc"
    for bad, why in [(b"\x0b\x04ab\x11\x03", "from 3 back"), (b"\x05\x04ab", "holds 2 bytes, declares 5"),
                     (b"\x02\x04ab\x11\x02", "with 2 of 2"), (b"\x80\x80\x80\x80\x80\x01", "longer than 5"),
                     (b"\x08\xf4\x10", "literal runs past")]:
        with pytest.raises(WeightsError, match=why):
            snappy_decompress(bad, "t", 100)
    with pytest.raises(WeightsError, match="declares 101 bytes; at most 100"):
        snappy_decompress(b"\x65", "t", 100)


def test_protobuf_reader_bounds():
    schema = {1: ("a", "int32"), 2: ("b", "bytes"), 3: ("c", "repeated int32")}
    assert message(b"\x08\x05\x12\x02hi\x1a\x03\x01\x02\x03\x18\x04\x28\x09", schema, "m") == \
        {"a": 5, "b": b"hi", "c": [1, 2, 3, 4]}                     # packed and not, unknown field 5 skipped
    assert message(b"\x08" + b"\xff" * 9 + b"\x01", schema, "m") == {"a": -1}
    assert varint(b"\xac\x02", 0, "v") == (300, 2)
    for bad, why in [(b"\x08\x05\x08\x06", "appears twice"), (b"\x08" + b"\xff" * 9 + b"\x02", "out of range"),
                     (b"\x08\x80\x80\x80\x80\x08", "does not fit an int32"), (b"\x12\x05hi", "claims 5 bytes"),
                     (b"\x0d\x00\x00", "truncated"), (b"\x0a\x00", "wire type 2, not 0"),
                     (b"\x00\x00", "field number 0")]:
        with pytest.raises(WeightsError, match=why):
            message(bad, schema, "m")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifos_are_refused_without_opening_them(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(WeightsError, match="pipe: a FIFO, not a regular file"):
        read_tf_checkpoint(str(tmp_path / "pipe"))
    os.mkfifo(tmp_path / "p.ckpt.index")
    with pytest.raises(WeightsError, match="p.ckpt.index: a FIFO"):
        read_tf_checkpoint(str(tmp_path / "p.ckpt"))
    records, shards = enc.bundle(enc.small_tensors())
    index = enc.write(str(tmp_path / "q.ckpt"), records, [])             # the index alone; the shard a FIFO
    os.mkfifo(tmp_path / "q.ckpt.data-00000-of-00001")
    with pytest.raises(WeightsError, match="data-00000-of-00001: a FIFO"):
        read_tf_checkpoint(index)
    os.mkfifo(tmp_path / "checkpoint")
    with pytest.raises(WeightsError, match="checkpoint: a FIFO"):
        read_tf_checkpoint(str(tmp_path))


def test_a_checkpoint_file_cannot_lead_outside_its_folder(tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "folder"
    outside.mkdir(), folder.mkdir()
    records, shards = enc.bundle(enc.small_tensors())
    enc.write(str(outside / "x.ckpt"), records, shards)
    (folder / "checkpoint").write_text('model_checkpoint_path: "x.ckpt"\n')
    for name in ("x.ckpt.index", "x.ckpt.data-00000-of-00001"):         # symlinks out
        os.symlink(outside / name, folder / name)
    with pytest.raises(WeightsError, match=r"checkpoint: names .*x.ckpt.index, which resolves to .*outside"):
        read_tf_checkpoint(str(folder))
    assert len(read_tf_checkpoint(str(folder / "x.ckpt"))) == 4         # given directly: the user's choice
    os.remove(folder / "x.ckpt.index")
    shutil.copy(outside / "x.ckpt.index", folder / "x.ckpt.index")      # the index inside, the shard out
    with pytest.raises(WeightsError, match="data-00000-of-00001, which resolves to"):
        read_tf_checkpoint(str(folder))
    for text in ['model_checkpoint_path: "/etc/passwd"', 'model_checkpoint_path: "../outside/x.ckpt"',
                 "all_model_checkpoint_paths: 'x.ckpt'", 'model_checkpoint_path: "\\377.ckpt"']:
        (folder / "checkpoint").write_text(text)
        with pytest.raises(WeightsError, match="checkpoint: "):
            read_tf_checkpoint(str(folder))
    (folder / "checkpoint").write_bytes(b"x" * (2 << 20))
    with pytest.raises(WeightsError, match="checkpoint: 2097152 bytes; a text file of at most"):
        read_tf_checkpoint(str(folder))


# ------------------------------------------------------------------ fuzzing
hypothesis = pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis")
from hypothesis import given, strategies as st  # noqa: E402
from test_weights_fuzz import EXAMPLES, SETTINGS, flip, load_bounded, splice, truncate  # noqa: E402


def rebuilt_index(raw, data):
    """The index's records changed inside the table (a key, a value, a whole block's contents, or
    a snappy block's bytes), the table rebuilt around them, so the checksums hold and the change
    reaches the parsers behind them."""
    records = list(tf_checkpoint._table(raw, "original"))
    where = data.draw(st.sampled_from(["key", "value", "block", "snappy"]), label="where")
    edit = data.draw(st.sampled_from([flip, truncate, splice]), label="edit")
    if where in ("key", "value"):
        i = data.draw(st.integers(0, len(records) - 1), label="record")
        key, value = records[i]
        records[i] = (edit(key, data), value) if where == "key" else (key, edit(value, data))
        return enc.table(records, per_block=data.draw(st.sampled_from([None, 1, 3]), label="per_block"))
    compress = (lambda b: edit(b, data)) if where == "block" else (lambda b: edit(enc.snappy_literals(b), data))
    return enc.table(records, per_block=data.draw(st.sampled_from([None, 2]), label="per_block"),
                     compression=int(where == "snappy"), compress=compress)


@pytest.mark.parametrize("part", ["index", "records", "shard"])
def test_mutated_checkpoints_only_ever_raise_weights_error(part, tmp_path):
    source = os.path.join(FIXTURES, "vars", "x.ckpt")
    original = {p: open(source + s, "rb").read() for p, s in [("index", ".index"),
                                                            ("shard", ".data-00000-of-00001")]}
    prefix = str(tmp_path / "x.ckpt")
    paths = {"index": prefix + ".index", "shard": prefix + ".data-00000-of-00001"}
    for p in paths:
        with open(paths[p], "wb") as f:
            f.write(original[p])
    assert load_bounded(paths["index"], read_tf_checkpoint) == "loaded"
    outcomes = []

    @SETTINGS
    @given(data=st.data())
    def fuzz(data):
        if part == "records":
            raw, target = rebuilt_index(original["index"], data), "index"
        else:
            raw, target = data.draw(st.sampled_from([flip, truncate, splice]), label="how")(original[part], data), part
        with open(paths[target], "wb") as f:
            f.write(raw)
        outcomes.append(load_bounded(paths["index"], read_tf_checkpoint))

    fuzz()
    assert len(outcomes) >= EXAMPLES // 2 and "refused" in outcomes
