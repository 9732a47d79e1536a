"""Three small encodings that TensorFlow checkpoints are made of, decoded with every length checked.

* **varint**: an integer in 7-bit groups, least significant first, the top bit of each byte
  saying "more follows" (300 = ``0xAC 0x02``). At most 10 bytes (64 bits), or 5 (32 bits).
* **protobuf wire format**: a message is a list of fields, each a varint *tag*
  (``field number << 3 | wire type``) and a value: wire type 0 a varint, 1 eight bytes, 2 a
  varint length and that many bytes (strings, nested messages, packed numbers), 5 four bytes.
  Field numbers come from the ``.proto`` schema; fields a reader does not know are skipped,
  which is how old readers survive new writers. Wire types 3 and 4 (groups) are obsolete.
* **snappy** (Google's fast compressor): a varint length, then elements: a *literal* (copy the
  next n bytes) or a *copy* (repeat n bytes from ``offset`` bytes back in the output -- the
  source may overlap the destination, which repeats a pattern).

A file from a stranger can claim a 10**20-byte length or a copy from before the start; each
such claim is checked before it is used, and the failure is a :class:`WeightsError` naming
``what`` was being read.
"""
from .common import WeightsError


def varint(buf, pos, what, max_bytes=10):
    """(value, position after it) of the varint at ``buf[pos]``; at most ``max_bytes`` bytes."""
    value = 0
    for i in range(max_bytes):
        if pos + i >= len(buf):
            raise WeightsError(f"{what}: truncated varint")
        b = buf[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            if value >> (64 if max_bytes == 10 else 32):
                raise WeightsError(f"{what}: varint out of range")
            return value, pos + i + 1
    raise WeightsError(f"{what}: varint longer than {max_bytes} bytes")


def fields(buf, what):
    """(number, wire type, value) of each field of a protobuf message; value an int, or bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = varint(buf, pos, what)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = varint(buf, pos, what)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if pos + n > len(buf):
                raise WeightsError(f"{what}: field {number} truncated")
            value, pos = int.from_bytes(buf[pos:pos + n], "little"), pos + n
        elif wire == 2:
            n, pos = varint(buf, pos, what)
            if n > len(buf) - pos:
                raise WeightsError(f"{what}: field {number} claims {n} bytes, {len(buf) - pos} are left")
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise WeightsError(f"{what}: wire type {wire} in field {number} (groups are not used here)")
        if number == 0:
            raise WeightsError(f"{what}: field number 0")
        yield number, wire, value


_WIRE = {"int32": 0, "int64": 0, "fixed32": 5, "bytes": 2}


def message(buf, schema, what, max_repeated=1024):
    """Decode a message with ``schema`` ``{number: (name, kind)}`` -> ``{name: value}``.

    kind is int32, int64 (two's complement), fixed32, bytes (a string or a nested message,
    decoded by the caller with its own schema), or "repeated <kind>" (a list; a repeated
    int32 may be packed). Unknown fields are skipped; a known one must have its kind's wire
    type; a singular field twice, or a repeated one over ``max_repeated`` times, is refused.
    Nothing recurses on the data, so a message cannot nest deeper than its schemas do.
    """
    out = {}
    for number, wire, value in fields(buf, what):
        if number not in schema:
            continue
        name, kind = schema[number]
        repeated, kind = kind.startswith("repeated "), kind.split()[-1]
        values = [value]
        if repeated and kind == "int32" and wire == 2:             # packed: varints back to back
            values, pos, wire = [], 0, 0
            while pos < len(value) and len(values) <= max_repeated:
                v, pos = varint(value, pos, what)
                values.append(v)
        if wire != _WIRE[kind]:
            raise WeightsError(f"{what}: field {name} has wire type {wire}, not {_WIRE[kind]}")
        for v in values:
            if kind in ("int32", "int64") and v >= 1 << 63:
                v -= 1 << 64
            if kind == "int32" and not -2 ** 31 <= v < 2 ** 31:
                raise WeightsError(f"{what}: field {name} = {v} does not fit an int32")
            if not repeated:
                if name in out:
                    raise WeightsError(f"{what}: field {name} appears twice")
                out[name] = v
            elif len(out.setdefault(name, [])) < max_repeated:
                out[name].append(v)
            else:
                raise WeightsError(f"{what}: field {name} repeated more than {max_repeated} times")
    return out


def snappy_decompress(data, what, limit):
    """Decompress a raw snappy block that declares at most ``limit`` bytes; every copy checked."""
    n, pos = varint(data, 0, what, max_bytes=5)
    if n > limit:
        raise WeightsError(f"{what}: snappy data declares {n} bytes; at most {limit} allowed")
    out = bytearray()
    while pos < len(data):
        tag, pos, kind = data[pos], pos + 1, data[pos] & 3
        if kind == 0:                                   # a literal of 1 to 2**32 bytes
            length, extra = tag >> 2, 0
            if length >= 60:                            # 60..63: the length is in the next 1..4 bytes
                extra = length - 59
                length = int.from_bytes(data[pos:pos + extra], "little")
            length, pos = length + 1, pos + extra
            if pos > len(data) or length > len(data) - pos or len(out) + length > n:
                raise WeightsError(f"{what}: a snappy literal runs past its input or the declared size")
            out += data[pos:pos + length]
            pos += length
            continue
        extra = (1, 2, 4)[kind - 1]                     # a copy: 1, 2 or 4 bytes of offset follow
        if pos + extra > len(data):
            raise WeightsError(f"{what}: a snappy copy is truncated")
        if kind == 1:
            length, offset = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | data[pos]
        else:
            length, offset = 1 + (tag >> 2), int.from_bytes(data[pos:pos + extra], "little")
        pos += extra
        if not 0 < offset <= len(out) or len(out) + length > n:
            raise WeightsError(f"{what}: a snappy copy of {length} bytes from {offset} back, "
                               f"with {len(out)} of {n} bytes written")
        pattern = bytes(out[len(out) - offset:len(out) - offset + length])
        out += (pattern * (length // len(pattern) + 1))[:length]     # overlapping: the pattern repeats
    if len(out) != n:
        raise WeightsError(f"{what}: snappy data holds {len(out)} bytes, declares {n}")
    return bytes(out)
