"""The fast twins of im2col and col2im: the same numbers, less memory traffic.

``im2col_into`` writes the columns into a reused workspace through one strided view (no loop,
no padded copy); ``col2im_add`` adds columns into an image in place, skipping what came from
the padding (``window_slices``). Their plain twins, and the layout both use, are in
minires/nn/im2col.py; tests/test_conv.py checks them against each other.
"""
from ..backend import as_strided, xp_of
from .memory import workspace


def im2col_into(img, col, KH, KW, SH, SW, PH, PW):
    """The fast im2col: (A, B, H, W) -> ``col`` (A, KH, KW, B, OH, OW), written in place.

    Same numbers as ``im2col`` (nn/im2col.py), three differences in how:
    - the zero padding goes into a reused workspace (only its border is cleared), not into
      a freshly allocated padded copy;
    - no loop: ``as_strided`` builds a *view* of the padded image with the shape of ``col``,
      ``windows[a, i, j, b, oh, ow] = padded[a, b, i + SH*oh, j + SW*ow]``. Stepping ``i`` by
      one moves one row down (the row stride); stepping ``oh`` by one moves SH rows down
      (SH times the row stride); likewise for j and ow. Nothing is copied until the single
      ``col[...] = windows``, which copies every window entry once;
    - at stride 1 along the width, only the rows are padded (``_windows_rows_padded``).
    ``img`` may be any strided view (a slice of the batch, channel-major).
    Plain twin: minires/nn/im2col.py:im2col.
    """
    A, B, H, W = img.shape
    _, _, _, _, OH, OW = col.shape
    xp = xp_of(img)
    if SW == 1:
        col[...] = _windows_rows_padded(img, KH, KW, SH, PH, PW, OH, OW)
        # the entries that wrapped around into a neighbouring row are padding: zero them
        for j in range(KW):
            d = j - PW              # this kernel column reads input column ow + d
            col[:, :, j, :, :, :max(-d, 0)] = 0        # ow + d < 0: left of the image
            col[:, :, j, :, :, max(W - d, 0):] = 0     # ow + d >= W: right of it
        return col
    if PH or PW:
        padded = workspace("im2col.padded", (A, B, H + 2 * PH, W + 2 * PW), img.dtype, xp)
        padded[:, :, :PH] = 0          # the border: top and bottom rows, left and right columns
        padded[:, :, PH + H:] = 0
        padded[:, :, :, :PW] = 0
        padded[:, :, :, PW + W:] = 0
        padded[:, :, PH:PH + H, PW:PW + W] = img
        img = padded
    sA, sB, sH, sW = img.strides
    windows = as_strided(img, (A, KH, KW, B, OH, OW), (sA, sH, sW, sB, SH * sH, SW * sW))
    col[...] = windows
    return col


def _windows_rows_padded(img, KH, KW, SH, PH, PW, OH, OW):
    """The windows view for stride 1 along the width, with zero rows above and below only.

    Why: copying a window view is fastest when long runs of it are contiguous in memory.
    With a padded width (W + 2*PW), one output row's window entries are a run of OW values
    and the next row's start PW*2 values later: the copy goes row by row, OW values at a
    time -- 8 at a time on an 8x8 map, far too few. Without the left and right padding, the
    rows lie back to back: the OH rows of OW = W values are ONE contiguous run of OH*W.

    The price: a window that hangs over the left edge (kernel column j < PW) now reads the
    last pixels of the row above instead of padding zeros, and one over the right edge the
    first pixels of the row below. Those entries are the output columns ow whose input column
    ow + j - PW lies outside [0, W); ``im2col_into`` overwrites them with 0 after the copy.
    The buffer has PW spare entries at each end, so that the windows of the first and last
    rows stay inside it (they read spare entries, later overwritten with 0).
    """
    A, B, H, W = img.shape
    Hp = H + 2 * PH
    size = A * B * Hp * W
    buf = workspace("im2col.padded", (PW + size + PW,), img.dtype, xp_of(img))
    buf[:PW] = 0
    buf[PW + size:] = 0
    padded = buf[PW:PW + size].reshape(A, B, Hp, W)
    padded[:, :, :PH] = 0
    padded[:, :, PH + H:] = 0
    padded[:, :, PH:PH + H] = img
    sA, sB, sH, sW = padded.strides
    # windows[a, i, j, b, oh, ow] = padded[a, b, i + SH*oh, ow + j - PW]: counted from buf[0],
    # which sits PW entries before padded[0, 0, 0, 0], the offset -PW disappears
    return as_strided(buf, (A, KH, KW, B, OH, OW), (sA, sH, sW, sB, SH * sH, sW))


def window_slices(k, S, P, size, n_out):
    """Along one axis, kernel offset ``k``: which outputs read a real input (not padding), and which.

    Output o reads input k + S*o - P, real when 0 <= k + S*o - P < size. Returns
    ``(inputs, outputs)``: two slices, the same length, inputs stepping by S.
    """
    o0 = max(0, -((k - P) // S))                 # first o with k + S*o - P >= 0 (a ceiling)
    o1 = min(n_out, (size - 1 - k + P) // S + 1)  # one past the last o with k + S*o - P <= size - 1
    if o1 <= o0:
        return slice(0, 0), slice(0, 0)
    first = k + S * o0 - P
    return slice(first, first + S * (o1 - o0 - 1) + 1, S), slice(o0, o1)


def col2im_add(col, img, SH, SW, PH, PW):
    """The fast col2im: ADD ``col`` (A, KH, KW, B, OH, OW) into ``img`` (A, B, H, W), in place.

    Same numbers as ``col2im`` (nn/im2col.py) (when ``img`` starts at zero), without its padded
    temporary: each kernel offset adds only the entries that came from real pixels
    (``window_slices``); those that came from the padding have nowhere to go and are dropped,
    which is what cropping the padded image does in ``col2im``.
    Plain twin: minires/nn/im2col.py:col2im.
    """
    A, KH, KW, B, OH, OW = col.shape
    _, _, H, W = img.shape
    for i in range(KH):
        rows, out_rows = window_slices(i, SH, PH, H, OH)
        for j in range(KW):
            cols, out_cols = window_slices(j, SW, PW, W, OW)
            img[:, :, rows, cols] += col[:, i, j, :, out_rows, out_cols]
    return img
