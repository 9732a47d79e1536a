"""im2col and col2im: turning sliding windows into the columns of a matrix, and back.

A convolution is a dot product between a filter and every window of the image. im2col
copies every window into one column of a matrix, so that all the dot products become
one matrix multiplication. col2im is its adjoint (the backward): it sends each column
entry back to the pixel it came from, ADDING where windows overlap, because such a pixel
took part in several outputs and its gradient is the sum of their contributions.

Layout. Both functions see the image as ``(A, B, H, W)`` and the columns as
``(A, KH, KW, B, OH, OW)``:

    col[a, i, j, b, oh, ow] = padded[a, b, i + SH*oh, j + SW*ow]

A convolution passes channel-major images ``x.transpose(1, 0, 2, 3)`` (A=C, B=N), so that
``col.reshape(C*KH*KW, N*OH*OW)`` is the textbook matrix: one row per filter entry (c, i, j),
one column per output pixel (n, oh, ow). Pooling passes ``x`` as it is (A=N, B=C) and
reduces over the (KH, KW) axes.

Both loop over the KH*KW kernel offsets only; each step is one vectorised strided copy
(or add), which runs unchanged on NumPy and CuPy (after Chainer's utils/conv.py).

``im2col`` and ``col2im`` are the reference: short, and what the tutorials use. The fast path
runs their twins in minires/engine/im2col.py, ``im2col_into`` and ``col2im_add``, which compute
exactly the same numbers with less memory traffic; the tests check them against these.
"""
from ..backend import xp_of


def out_size(size, k, s, p):
    """Output length of a sliding window: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * p - k) // s + 1


def im2col(img, KH, KW, SH, SW, PH, PW, pad_value=0.0):
    """(A, B, H, W) -> (A, KH, KW, B, OH, OW), padding with ``pad_value`` (-inf for max-pool)."""
    xp = xp_of(img)
    A, B, H, W = img.shape
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    if PH or PW:
        img = xp.pad(img, ((0, 0), (0, 0), (PH, PH), (PW, PW)), mode="constant", constant_values=pad_value)
    col = xp.empty((A, KH, KW, B, OH, OW), dtype=img.dtype)
    for i in range(KH):
        i_lim = i + SH * OH
        for j in range(KW):
            j_lim = j + SW * OW
            # every window's (i, j) entry at once: rows i, i+SH, ..., columns j, j+SW, ...
            col[:, i, j] = img[:, :, i:i_lim:SH, j:j_lim:SW]
    return col


def col2im(col, H, W, SH, SW, PH, PW):
    """(A, KH, KW, B, OH, OW) -> (A, B, H, W): the adjoint of im2col (overlaps are summed)."""
    xp = xp_of(col)
    A, KH, KW, B, OH, OW = col.shape
    # room for the padding, plus SH-1 / SW-1 rows that a window may reach past the last output
    img = xp.zeros((A, B, H + 2 * PH + SH - 1, W + 2 * PW + SW - 1), dtype=col.dtype)
    for i in range(KH):
        i_lim = i + SH * OH
        for j in range(KW):
            j_lim = j + SW * OW
            img[:, :, i:i_lim:SH, j:j_lim:SW] += col[:, i, j]
    return img[:, :, PH:H + PH, PW:W + PW]
