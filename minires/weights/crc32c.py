"""CRC32C (Castagnoli), the checksum of TensorFlow checkpoints and LevelDB tables, in NumPy.

A CRC is the remainder of the message, read as a polynomial over GF(2), divided by a fixed
polynomial (here 0x1EDC6F41, written bit-reversed as 0x82F63B78). :func:`crc32c_plain` is
the textbook byte-at-a-time loop with a 256-entry table: one Python step per byte, 0.09 s
per MiB here, so 15 seconds for a ResNet-101's 170 MB. :func:`crc32c` gives the same
numbers in NumPy, about 0.45 s per 100 MB; its docstring derives it from the plain loop.

TensorFlow stores *masked* CRCs (:func:`mask`): a CRC of data that itself holds CRCs is
weak, so LevelDB rotates and offsets the stored value.
"""
import numpy as np

POLY = 0x82F63B78            # the Castagnoli polynomial, bit-reversed ("reflected")
WINDOW = 1 << 24             # the fast path works through 16 MiB at a time (bounded extra memory)
CHUNKS = 1 << 14             # ... cut into up to 16,384 chunks that run side by side
FAST_MIN = 4096              # below this the plain loop is as quick


def _table():
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):       # divide each byte value by POLY, one bit at a time
        t = np.where(t & 1, (t >> 1) ^ np.uint32(POLY), t >> 1).astype(np.uint32)
    return t


TABLE = _table()             # TABLE[b]: the register after feeding byte b to an all-zero register
_TABLE_LIST = [int(v) for v in TABLE]


def crc32c_plain(data, crc=0):
    """The CRC32C of ``data`` (bytes-like), continuing from ``crc``; one byte per step."""
    reg = crc ^ 0xFFFFFFFF                     # the register starts all ones ...
    for b in bytes(data):
        reg = _TABLE_LIST[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg ^ 0xFFFFFFFF                    # ... and is inverted at the end


def crc32c(data, crc=0):
    """The CRC32C of ``data`` (bytes-like), continuing from ``crc``; plain twin:
    ``minires/weights/crc32c.py:crc32c_plain``, which it equals (tests/test_weights_tf_checkpoint.py).

    The plain loop is a *linear* map of the register: write ``R(r, m)`` for the register
    after feeding message ``m`` to register ``r`` (before the final inversion). Then

    1. ``R(r, m) = Z_n(r) ^ R(0, m)``, where ``Z_n`` feeds ``n = len(m)`` zero bytes: the
       register's own bits and the message's bits never mix except by XOR;
    2. so ``R(0, A + B) = Z_len(B)(R(0, A)) ^ R(0, B)``: a chunk's register can be computed
       from zero, on its own, and the chunks joined afterwards (zlib's ``crc32_combine``);
    3. ``R(0, zeros + m) = R(0, m)``: zero bytes fed to a zero register leave it zero, so
       padding in front makes every chunk the same length;
    4. the starting register can be XORed into the first 4 bytes of the message instead
       (after 4 steps both have pushed those bits through the same table lookups).

    So: pad in front, cut into K equal chunks, and run the plain loop on all K at once, a
    NumPy vector of K registers, one table lookup per byte *position* (L = len/K steps, not
    len). Then join the chunks pairwise, K/2 pairs at a time: ``Z_L`` is a 32 x 32 matrix
    over GF(2), kept as the images of the 32 register bits, and ``Z_2L`` is ``Z_L`` applied
    to its own columns. A 16 MiB window at a time, so the extra memory stays bounded.
    """
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    for start in range(0, buf.size, WINDOW):
        crc = _crc32c_window(buf[start:start + WINDOW], crc)
    return crc


def _apply(columns, values):
    """The GF(2)-linear map whose images of bits 0..31 are ``columns``, applied to each of ``values``."""
    bits = (values[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    return np.bitwise_xor.reduce(np.where(bits == 1, columns, np.uint32(0)), axis=1)


def _crc32c_window(piece, crc):
    m = piece.size
    if m < FAST_MIN:
        return crc32c_plain(piece.tobytes(), crc)
    k = min(CHUNKS, 1 << ((m // 64).bit_length() - 1))       # a power of two; chunks of >= 64 bytes
    length = -(-m // k)
    x = np.zeros(k * length, np.uint8)
    pad = k * length - m
    x[pad:] = piece                                              # step 3: zeros in front
    x[pad:pad + 4] ^= np.frombuffer((crc ^ 0xFFFFFFFF).to_bytes(4, "little"), np.uint8)   # step 4
    x = x.reshape(k, length)
    regs = np.zeros(k, np.uint32)
    for i in range(length):                                      # the plain loop, k chunks at once
        regs = TABLE[(regs ^ x[:, i]) & 0xFF] ^ (regs >> 8)
    shift = np.uint32(1) << np.arange(32, dtype=np.uint32)       # Z_length, from the identity ...
    for _ in range(length):                                      # ... by feeding zero bytes to each bit
        shift = TABLE[shift & 0xFF] ^ (shift >> 8)
    while regs.size > 1:                                         # step 2, pairwise
        regs = _apply(shift, regs[0::2]) ^ regs[1::2]
        shift = _apply(shift, shift)                             # Z_2n = Z_n o Z_n
    return int(regs[0]) ^ 0xFFFFFFFF


_MASK_DELTA = 0xA282EAD8


def mask(crc):
    """LevelDB's masked CRC, as TensorFlow stores it: rotate right by 15 bits, add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked):
    """The inverse of :func:`mask`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
