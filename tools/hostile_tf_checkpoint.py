"""Hostile TensorFlow checkpoints for the corpus of tools/make_hostile_corpus.py, and the small
encoder that writes them (tests/test_weights_tf_checkpoint.py builds its crafted files with it).

The encoder is minires.weights.tf_checkpoint read backwards: protobuf fields, prefix-compressed
records in blocks with restart points, each block with its compression byte and masked CRC32C,
an index block, the footer with its magic number, and the data shards (TensorFlow 2.21's
``tf.train.load_checkpoint`` reads what it writes: one block, several, snappy-compressed -- checked
by hand, since TensorFlow is no test dependency). A valid checkpoint is
built, then changed in exactly one place, so each file tests one check. Each case must end in a
``WeightsError`` within 2 s and 48 MiB + 8 x the listed file's size (loader "tf-checkpoint":
``read_tf_checkpoint``). The listed name is the ``.index`` file, or the folder for the cases
about a ``checkpoint`` file. A FIFO is not in the corpus (copying a corpus would hang on it);
the unit tests try one.
"""
import os

import numpy as np

from minires.weights.crc32c import crc32c, mask

MAGIC = 0xDB4775248B80FB57
CODES = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int64": 9, "bool": 10, "float16": 19}


# ------------------------------------------------------------------ protobuf
def varint(n):
    n &= (1 << 64) - 1                                   # negative ints: two's complement, 10 bytes
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def pb_int(number, n):
    return varint(number << 3) + varint(n)


def pb_bytes(number, raw):
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def pb_fixed32(number, n):
    return varint(number << 3 | 5) + (n & 0xFFFFFFFF).to_bytes(4, "little")


def header(num_shards=1, endianness=0, min_consumer=0):
    version = pb_int(1, 1) + (pb_int(2, min_consumer) if min_consumer else b"")
    return pb_int(1, num_shards) + (pb_int(2, endianness) if endianness else b"") + pb_bytes(3, version)


def shape_proto(shape):
    return b"".join(pb_bytes(2, pb_int(1, d)) for d in shape)


def entry(dtype, shape, shard_id=0, offset=0, size=0, crc=0, slices=0):
    """A BundleEntryProto; ``crc`` unmasked (it is masked here, as TensorFlow stores it)."""
    return (pb_int(1, dtype) + pb_bytes(2, shape_proto(shape)) + (pb_int(3, shard_id) if shard_id else b"")
            + (pb_int(4, offset) if offset else b"") + pb_int(5, size) + pb_fixed32(6, mask(crc))
            + b"".join(pb_bytes(7, pb_bytes(1, pb_int(2, 1))) for _ in range(slices)))


# ------------------------------------------------------------------ the sorted string table
def block(records, restart_interval=16):
    """A block's contents: prefix-compressed records, then the restart offsets and their count."""
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(records):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    return bytes(out) + b"".join(r.to_bytes(4, "little") for r in restarts) + len(restarts).to_bytes(4, "little")


def snappy_literals(data):
    """Snappy-compress the lazy way: the length, then literals of at most 60 bytes."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 60):
        piece = data[i:i + 60]
        out += bytes([(len(piece) - 1) << 2]) + piece
    return bytes(out)


def trailer(contents, kind=0):
    return bytes([kind]) + mask(crc32c(contents + bytes([kind]))).to_bytes(4, "little")


def table(records, per_block=None, compression=0, compress=None):
    """The bytes of a sorted string table holding ``records`` (in the order given), ``per_block``
    records to a data block (all in one if None). ``compression`` is the blocks' type byte (1:
    snappy, compressed here with literals only); ``compress``, if given, changes each data
    block's contents instead, before the checksum is computed."""
    per_block = per_block or max(len(records), 1)
    out, index = bytearray(), []
    for i in range(0, max(len(records), 1), per_block):
        chunk = records[i:i + per_block]
        contents = block(chunk)
        if compress or compression:
            contents = (compress or snappy_literals)(contents)
        index.append((chunk[-1][0] if chunk else b"", varint(len(out)) + varint(len(contents))))
        out += contents + trailer(contents, compression)
    meta = varint(len(out)) + varint(8)
    out += block([]) + trailer(block([]))
    contents = block(index, restart_interval=1)
    handle = varint(len(out)) + varint(len(contents))
    out += contents + trailer(contents)
    footer = (meta + handle).ljust(40, b"\0") + MAGIC.to_bytes(8, "little")
    return bytes(out + footer)


# ------------------------------------------------------------------ whole checkpoints
def bundle(tensors, num_shards=1):
    """``(records, shards)`` of a checkpoint of ``{key: array}`` (tensor i in shard i % num_shards),
    with a ``_CHECKPOINTABLE_OBJECT_GRAPH`` string entry as TensorFlow writes one."""
    shards = [bytearray() for _ in range(num_shards)]
    graph = b"\x01\x07not-read" + mask(crc32c(b"\x07")).to_bytes(4, "little") + b"objects"
    entries = {b"_CHECKPOINTABLE_OBJECT_GRAPH": entry(7, (), 0, 0, len(graph), crc32c(graph))}
    shards[0] += graph
    for i, (key, a) in enumerate(tensors.items()):
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        s = i % num_shards
        entries[key.encode()] = entry(CODES[a.dtype.name], a.shape, s, len(shards[s]), len(raw), crc32c(raw))
        shards[s] += raw
    return [(b"", header(num_shards))] + sorted(entries.items()), [bytes(s) for s in shards]


def write(prefix, records, shards, **table_args):
    """Write ``prefix.index`` and the data shards; returns the index's path."""
    for i, raw in enumerate(shards):
        with open(f"{prefix}.data-{i:05d}-of-{len(shards):05d}", "wb") as f:
            f.write(raw)
    with open(prefix + ".index", "wb") as f:
        f.write(table(records, **table_args))
    return prefix + ".index"


def small_tensors():
    rng = np.random.default_rng(0)
    return {"conv/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
            "bn/moving_variance": rng.random(4).astype(np.float32) + 1, "step": np.array(12, np.int64),
            "head/bias": np.arange(5, dtype=np.float16)}


def replace(records, key, value):
    return [(k, value if k == key else v) for k, v in records]


def flip(offset, bit=1):
    """A change to the index's bytes: one bit of the byte at ``offset`` flipped."""
    return lambda raw: raw[:offset] + bytes([raw[offset] ^ bit]) + raw[offset + 1:]


def attacks():
    """name -> (records, shards, table arguments, change to the index's bytes or None, what it tests)."""
    records, shards = bundle(small_tensors())
    data, conv = shards[0], b"conv/kernel"

    def with_conv(value):
        return replace(records, conv, value)

    def with_header(h):
        return [(b"", h)] + records[1:]

    big = bytes(range(256)) * 4096                                 # 1 MiB, one tensor's bytes
    cases = {
        "bad-magic": (records, shards, {}, lambda raw: raw[:-1] + b"\x00", "the footer's magic number"),
        "bad-block-crc": (records, shards, {}, flip(20), "a byte of the data block: its CRC32C no longer matches"),
        "truncated-index": (records, shards, {}, lambda raw: raw[:len(raw) // 2], "half an index"),
        "index-handle-past-end": (records, shards, {}, lambda raw: raw[:-48] + b"\x00\x08\xff\xff\x03\x10"
                                  + raw[-42:], "the index block's handle points past the file"),
        "one-of-many-blocks": (records, shards, {"per_block": 1}, flip(30, 0x10), "one of many blocks changed"),
        "unsorted-keys": (records[:1] + records[1:][::-1], shards, {}, None, "keys in descending order"),
        "duplicate-key": (records + records[-1:], shards, {}, None, "the last key twice"),
        "no-header": (records[1:], shards, {}, None, "no header entry"),
        "empty-table": ([], shards, {}, None, "a table without records"),
        "key-too-long": (records + [(b"z" * 5000, records[1][1])], shards, {}, None, "a 5000-byte key"),
        "not-utf8-key": (records + [(b"\xff\xfe", records[1][1])], shards, {}, None, "a key that is not UTF-8"),
        "slice-key": (records[:1] + [(b"\x00conv/kernel\x00\x01\x01", records[1][1])] + records[1:], shards, {},
                      None, "the key of one slice of a partitioned tensor"),
        "slice-entry": (with_conv(entry(1, (3, 3, 2, 4), slices=2)), shards, {}, None,
                        "a partitioned variable's entry (slices)"),
        "huge-shape": (with_conv(entry(1, (2 ** 62, 2 ** 62), size=16)), shards, {}, None, "2**124 elements"),
        "negative-dim": (with_conv(entry(1, (-1, 4), size=16)), shards, {}, None, "dimension -1 (unknown)"),
        "many-dims": (with_conv(entry(1, (1,) * 5000, size=4)), shards, {}, None, "5000 dimensions"),
        "size-mismatch": (with_conv(entry(1, (3, 3, 2, 4), size=4)), shards, {}, None, "4 bytes for 72 float32"),
        "offset-past-shard": (with_conv(entry(1, (3, 3, 2, 4), offset=len(data), size=288)), shards, {}, None,
                              "a tensor's bytes lie past the shard's end"),
        "offset-huge": (with_conv(entry(1, (3, 3, 2, 4), offset=2 ** 63 - 1, size=288)), shards, {}, None,
                        "offset 2**63 - 1"),
        "offset-negative": (with_conv(entry(1, (3, 3, 2, 4), offset=-8, size=288)), shards, {}, None, "offset -8"),
        "shard-id-too-big": (with_conv(entry(1, (3, 3, 2, 4), shard_id=5, size=288)), shards, {}, None,
                             "shard_id 5 of 1"),
        "unknown-dtype": (with_conv(entry(999, (3, 3, 2, 4), size=288)), shards, {}, None, "dtype 999"),
        "resource-dtype": (with_conv(entry(20, (1,), size=8)), shards, {}, None, "DT_RESOURCE"),
        "overlong-varint": (with_conv(b"\x08" + b"\xff" * 11), shards, {}, None, "an 11-byte varint"),
        "field-claims-more": (with_conv(b"\x12\xff\xff\xff\x7f"), shards, {}, None,
                              "a length-delimited field claims 256 MiB"),
        "group-wire-type": (with_conv(b"\x0b\x0c"), shards, {}, None, "a protobuf group"),
        "num-shards-zero": (with_header(header(0)), shards, {}, None, "num_shards 0"),
        "num-shards-huge": (with_header(header(2 ** 31 - 1)), shards, {}, None, "num_shards 2**31 - 1"),
        "big-endian": (with_header(header(1, endianness=1)), shards, {}, None, "a big-endian bundle"),
        "newer-version": (with_header(header(1, min_consumer=7)), shards, {}, None, "for readers of version 7"),
        "data-crc-mismatch": (records, [data[:-3] + bytes([data[-3] ^ 0x40]) + data[-2:]], {}, None,
                              "a tensor's byte changed: its CRC32C no longer matches the index's"),
        "snappy-declares-4gib": (records, shards, {"compression": 1, "compress": lambda b: varint(2 ** 32 - 1) + b},
                                 None, "a snappy block declaring 4 GiB"),
        "snappy-copy-before-start": (records, shards, {"compression": 1, "compress": lambda b: varint(len(b))
                                                       + b"\x02\x40\x00" + b}, None,
                                     "a snappy copy from 64 bytes before the output's start"),
        "snappy-literal-overrun": (records, shards, {"compression": 1, "compress": lambda b: varint(len(b))
                                                     + b"\xf0\xff\xff\x00\x00" + b}, None,
                                   "a snappy literal of 65,536 bytes in a short block"),
        "same-bytes-100-times": ([(b"", header())] + [(b"t%03d" % i, entry(1, (len(big) // 4,), size=len(big),
                                                                        crc=crc32c(big))) for i in range(100)],
                                 [big], {}, None, "100 tensors over the same 1 MiB: the output budget"),
    }
    return cases


def write_tf_checkpoint_attacks(out, entries):
    """Write the hostile checkpoints into ``out``; append (name, "tf-checkpoint", "error", what) to entries."""
    for name, (records, shards, table_args, change, what) in attacks().items():
        index = write(os.path.join(out, f"tf-{name}.ckpt"), records, shards, **table_args)
        if change is not None:
            with open(index, "rb") as f:
                raw = change(f.read())
            with open(index, "wb") as f:
                f.write(raw)
        entries.append((os.path.basename(index), "tf-checkpoint", "error", what))
    records, shards = bundle(small_tensors(), num_shards=2)
    write(os.path.join(out, "tf-shard-missing.ckpt"), records, shards)
    os.remove(os.path.join(out, "tf-shard-missing.ckpt.data-00001-of-00002"))
    entries.append(("tf-shard-missing.ckpt.index", "tf-checkpoint", "error", "its second data shard is missing"))
    for name, target in [("traversal", "../../etc/passwd"), ("absolute", "/etc/passwd"),
                         ("dotdot-inside", "sub/../../x.ckpt")]:
        folder = os.path.join(out, f"tf-checkpoint-file-{name}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "checkpoint"), "w") as f:
            f.write(f'model_checkpoint_path: "{target}"\nall_model_checkpoint_paths: "{target}"\n')
        entries.append((os.path.basename(folder), "tf-checkpoint", "error", f"a checkpoint file naming {target}"))
