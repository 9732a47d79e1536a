"""The fast path of Conv2d: ``conv_forward`` / ``conv_backward``'s numbers with less memory traffic.

The textbook algorithm (minires/nn/conv.py) builds the columns of the whole batch, KH*KW times
the input's size, and keeps them for the backward. Here:

- a 1x1 kernel skips im2col: its input already is the column matrix (``pointwise_columns``);
- the batch is turned into columns a few images at a time, into a reused workspace
  (``batch_chunks``, ``memory.workspace``), and backward recomputes the columns from x
  instead of keeping them (1/(KH*KW) of the memory);
- at stride 1 the input gradient is a convolution with the flipped kernel, and the weight
  gradient comes from that convolution's columns (``backward_by_flipped_conv``);
- activations stay channel-major (``memory.py``), so no layer transposes its output.

``forward(layer, x)`` and ``backward(layer, grad_out)`` are what ``Conv2d.forward`` and
``Conv2d.backward`` hand the layer to (engine/__init__.py registers them); tests/test_plain_vs_fast.py
checks every function here against its plain twin in float64.
"""
from .im2col import col2im_add, im2col_into
from .memory import channel_major, workspace
from .padding import pad_same_channel_major
from ..backend import xp_of
from ..nn.im2col import out_size
from ..nn.padding import crop_same

CHUNK_BYTES = 4 * 2**20  # im2col about this many bytes of columns at a time (see batch_chunks) ...
CHUNK_COLUMNS = 4096     # ... but at least this many columns (output pixels) per matrix multiply


def forward(layer, x):
    """Conv2d's forward on the fast path: "same" padding into a channel-major copy, then
    ``conv_forward_fast``. Plain twin: minires/nn/conv.py:Conv2d.forward."""
    if layer.same:
        x = pad_same_channel_major(layer, x, 0.0)
    return conv_forward_fast(layer, x)


def backward(layer, grad_out):
    """Conv2d's backward on the fast path: ``conv_backward_fast``, then the "same" border's
    gradient dropped. Plain twin: minires/nn/conv.py:Conv2d.backward."""
    dx = conv_backward_fast(layer, grad_out)
    return crop_same(layer, dx) if layer.same else dx


def conv_forward_fast(layer, x):
    """``conv_forward``'s numbers: 1x1 without im2col, columns a chunk of images at a time into
    a workspace, the output stored channel-major (``memory.py``); keeps x, not the columns.

    Plain twin: minires/nn/conv.py:conv_forward.
    """
    xp = xp_of(x)
    N, C, H, W = x.shape
    O, G = layer.out_channels, layer.groups
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    w = layer.weight.data.reshape(G, O // G, C // G * KH * KW)
    y = xp.empty((G, O // G, N, OH * OW), dtype=x.dtype)      # channel-major: (O, N, OH, OW)
    if is_pointwise(layer):
        # a 1x1 kernel: the (strided) input already is the column matrix, no im2col at all
        xp.matmul(w, pointwise_columns(layer, x), out=y.reshape(G, O // G, N * OH * OW))
    else:
        for n0, n1 in chunks(layer, N, OH * OW, x.dtype.itemsize):
            col = columns(layer, x, n0, n1, OH, OW)             # (G, C/G*KH*KW, n*OH*OW)
            xp.matmul(w, col, out=y[:, :, n0:n1].reshape(G, O // G, -1))
    y = channel_major(y.reshape(O, N, OH, OW))                # (N, O, OH, OW), a view
    if layer.bias is not None:
        y += layer.bias.data.reshape(1, O, 1, 1)
    layer.save_for_backward(x)     # x itself, no copy: backward recomputes the columns from it
    return y


def conv_backward_fast(layer, grad_out):
    """``conv_backward``'s numbers by one of three algorithms, each a function of its own.

    - 1x1 kernel: the columns are x itself (``backward_pointwise``);
    - stride 1 and padding < kernel: dx as a convolution of dy with the flipped kernel,
      dw from that convolution's columns (``backward_by_flipped_conv``). That convolution
      pads dy by K - 1 - P on each side, a real padding only while P <= K - 1. A wider
      padding would have to be a crop (rare: outputs that see nothing but padding);
    - everything else, and those: as ``conv_backward``, a chunk of images at a time
      (``backward_by_col2im``).

    Plain twin: minires/nn/conv.py:conv_backward.
    """
    xp = xp_of(grad_out)
    x, = layer.saved
    N, C, H, W = x.shape
    _, O, OH, OW = grad_out.shape
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    dy = xp.ascontiguousarray(channel_major(grad_out)).reshape(layer.groups, O // layer.groups, N, OH * OW)
    if layer.bias is not None:
        layer.bias.grad += dy.reshape(O, -1).sum(axis=1)
    if is_pointwise(layer):
        return backward_pointwise(layer, dy, x, OH, OW)
    if (SH, SW) == (1, 1) and PH < KH and PW < KW:
        return backward_by_flipped_conv(layer, dy, x, OH, OW)
    return backward_by_col2im(layer, dy, x, OH, OW)


def backward_pointwise(layer, dy, x, OH, OW):
    """1x1 kernel: dy (G, O/G, N, OH*OW) -> dx (N, C, H, W); adds into weight.grad.

    The columns are the (strided) input itself, so dw = dy @ x^T and dx = w^T @ dy, with
    no im2col and no col2im; with a stride, the pixels the kernel skipped get gradient 0.
    """
    xp = xp_of(dy)
    N, C, H, W = x.shape
    G, SH, SW = layer.groups, *layer.stride
    dy = dy.reshape(G, -1, N * OH * OW)
    wT = layer.weight.data.reshape(G, -1, C // G).transpose(0, 2, 1)
    dw = xp.matmul(dy, pointwise_columns(layer, x).transpose(0, 2, 1))
    layer.weight.grad += dw.reshape(layer.weight.grad.shape)
    dcol = xp.matmul(wT, dy).reshape(C, N, OH, OW)
    if (SH, SW) == (1, 1):
        return channel_major(dcol)
    dx = xp.zeros((C, N, H, W), dtype=dy.dtype)
    dx[:, :, ::SH, ::SW] = dcol
    return channel_major(dx)


def backward_by_col2im(layer, dy, x, OH, OW):
    """The general case: dy (G, O/G, N, OH*OW) -> dx (N, C, H, W); adds into weight.grad.

    ``conv_backward``'s dw = dy @ col^T and dcol = w^T @ dy, then col2im, a chunk of
    images at a time, with the columns recomputed from x (the forward did not keep them).
    """
    xp = xp_of(dy)
    N, C, H, W = x.shape
    O, G = layer.out_channels, layer.groups
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    wT = layer.weight.data.reshape(G, O // G, C // G * KH * KW).transpose(0, 2, 1)
    dwT = 0  # dw transposed, (G, C/G*KH*KW, O/G)
    for n0, n1 in chunks(layer, N, OH * OW, x.dtype.itemsize):
        col = columns(layer, x, n0, n1, OH, OW)                 # recomputed from x
        # dw = dy @ col^T, computed as its transpose col @ dy^T: the same numbers, but
        # OpenBLAS runs this orientation up to 2x faster when O is small (16-64 channels)
        dwT += xp.matmul(col, dy[:, :, n0:n1].reshape(G, O // G, -1).transpose(0, 2, 1))
    layer.weight.grad += dwT.transpose(0, 2, 1).reshape(layer.weight.grad.shape)
    dx = xp.zeros((C, N, H, W), dtype=dy.dtype)                # channel-major, like the forward
    for n0, n1 in chunks(layer, N, OH * OW, x.dtype.itemsize):
        dcol = workspace("conv.dcol", (G, C // G * KH * KW, (n1 - n0) * OH * OW), dy.dtype, xp)
        xp.matmul(wT, dy[:, :, n0:n1].reshape(G, O // G, -1), out=dcol)
        col2im_add(dcol.reshape(C, KH, KW, n1 - n0, OH, OW), dx[:, n0:n1], SH, SW, PH, PW)
    return channel_major(dx)


def backward_by_flipped_conv(layer, dy, x, OH, OW):
    """Stride 1: dy (G, O/G, N, OH*OW), x (N, C, H, W) -> dx (N, C, H, W); adds into weight.grad.

    At stride 1 the input gradient of a convolution is itself a convolution: of dy with
    the kernel turned by 180 degrees, input and output channels swapped, and padding
    K - 1 - P. (dx[c, a] = sum over o, i of w[o, c, i] * dy[o, a + P - i]; put i' = K-1-i.)
    So it runs like the forward -- im2col of dy, one matmul per chunk -- and needs
    neither the (C*KH*KW, N*OH*OW) matrix w^T @ dy nor col2im's scattered adds.

    The same columns give the weight gradient. Row (o, i', j') of dy's columns holds, at
    input pixel a, dy[o, a + P - i] with i = K-1-i', and dw[o, c, i] = sum over a of
    x[c, a] * dy[o, a + P - i]. So dw = col_dy @ x^T, its rows in flipped order (i' for
    i): the columns of x are not needed in backward at all, one im2col instead of two.
    """
    xp = xp_of(dy)
    N, C, H, W = x.shape
    O, G = layer.out_channels, layer.groups
    (KH, KW), (PH, PW) = layer.kernel_size, layer.padding
    # w (G, O/G, C/G, KH, KW) -> flipped (G, C/G, O/G, KH, KW): the filters of the transposed conv
    w = layer.weight.data.reshape(G, O // G, C // G, KH, KW)[:, :, :, ::-1, ::-1]
    w_flip = xp.ascontiguousarray(w.transpose(0, 2, 1, 3, 4)).reshape(G, C // G, O // G * KH * KW)
    dy = dy.reshape(O, N, OH, OW)
    xc = channel_major(x)                                     # (C, N, H, W): a view
    dx = xp.empty((G, C // G, N, H * W), dtype=dy.dtype)       # channel-major: (C, N, H, W)
    dw_flipped = 0                                             # (G, O/G*KH*KW, C/G), rows (o, i', j')
    for n0, n1 in batch_chunks(N, O * KH * KW * H * W * dy.dtype.itemsize, H * W):
        col = workspace("conv.dcol", (O, KH, KW, n1 - n0, H, W), dy.dtype, xp)
        im2col_into(dy[:, n0:n1], col, KH, KW, 1, 1, KH - 1 - PH, KW - 1 - PW)
        col = col.reshape(G, O // G * KH * KW, -1)
        xp.matmul(w_flip, col, out=dx[:, :, n0:n1].reshape(G, C // G, -1))
        x_chunk = xc[:, n0:n1].reshape(G, C // G, -1)          # a view if x is channel-major
        dw_flipped += xp.matmul(col, x_chunk.transpose(0, 2, 1))
    # rows (o, i', j') -> (o, i, j): flip the kernel axes back; columns c -> (O, C/G, KH, KW)
    dw = dw_flipped.reshape(G, O // G, KH, KW, C // G)[:, :, ::-1, ::-1].transpose(0, 1, 4, 2, 3)
    layer.weight.grad += dw.reshape(layer.weight.grad.shape)
    return channel_major(dx.reshape(C, N, H, W))


def is_pointwise(layer):
    return layer.kernel_size == (1, 1) and layer.padding == (0, 0)


def pointwise_columns(layer, x):
    """1x1 kernel: x (N, C, H, W) -> (G, C/G, N*OH*OW), a view when x is channel-major and unstrided."""
    SH, SW = layer.stride
    x = channel_major(x)[:, :, ::SH, ::SW]
    return x.reshape(layer.groups, layer.in_channels // layer.groups, -1)


def columns(layer, x, n0, n1, OH, OW):
    """im2col of images n0..n1-1 into a reused workspace -> (G, C/G*KH*KW, (n1-n0)*OH*OW)."""
    xp = xp_of(x)
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    C, G = layer.in_channels, layer.groups
    col = workspace("conv.col", (C, KH, KW, n1 - n0, OH, OW), x.dtype, xp)
    im2col_into(channel_major(x)[:, n0:n1], col, KH, KW, SH, SW, PH, PW)
    return col.reshape(G, C // G * KH * KW, -1)


def chunks(layer, N, pixels, itemsize):
    KH, KW = layer.kernel_size
    return batch_chunks(N, layer.in_channels * KH * KW * pixels * itemsize, pixels)


def batch_chunks(N, per_image, pixels):
    """Split a batch of N images into (n0, n1) chunks for im2col: about CHUNK_BYTES of columns
    each, but at least CHUNK_COLUMNS output pixels (``pixels`` per image) per chunk.

    Columns are KH*KW times the size of the input; built a few images at a time they stay
    in the processor's cache between im2col and the matrix multiply, and the workspace
    stays small (the ResNet-50 stem's columns are 118 MB for a batch of 16). A matrix
    multiply with too few columns cannot keep every BLAS thread busy, hence the minimum.
    """
    step = max(1, min(N, max(CHUNK_BYTES // per_image, -(-CHUNK_COLUMNS // pixels))))
    return [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]
