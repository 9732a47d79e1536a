"""Conv2d: convolution as one matrix multiplication per group, by im2col / col2im.

Read from the top. ``conv_forward`` and ``conv_backward`` are the textbook algorithm: im2col
of the whole batch, one matrix multiply, and col2im in the backward. ``Conv2d`` runs them when
the plain switch is on (``with minires.nn.plain():``); by default it runs its fast path
(``_forward_fast``, ``_backward_fast`` and the named tricks below them), which computes the
same numbers -- the tests check it in float64 -- with less memory traffic:

- a 1x1 kernel skips im2col: its input already is the column matrix (``_pointwise_columns``);
- the batch is turned into columns a few images at a time, into a reused workspace
  (``batch_chunks``, ``memory.workspace``), and backward recomputes the columns from x
  instead of keeping them (1/(KH*KW) of the memory);
- at stride 1 the input gradient is a convolution with the flipped kernel, and the weight
  gradient comes from that convolution's columns (``_backward_by_flipped_conv``);
- activations stay channel-major (``memory.py``), so no layer transposes its output.
"""
import math

from . import init
from .im2col import col2im, col2im_add, im2col, im2col_into, out_size
from .memory import channel_major, workspace
from .module import Module, Parameter, is_plain
from ..backend import xp_of

CHUNK_BYTES = 4 * 2**20  # im2col about this many bytes of columns at a time (see batch_chunks) ...
CHUNK_COLUMNS = 4096     # ... but at least this many columns (output pixels) per matrix multiply


def conv_forward(x, w, b, stride, padding, groups=1):
    """x (N, C, H, W), w (O, C/G, KH, KW), b (O,) or None -> y (N, O, OH, OW), cache.

    The textbook convolution: im2col of the whole batch, then one matrix multiply per group.
    """
    xp = xp_of(x)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    (SH, SW), (PH, PW), G = stride, padding, groups
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    # Columns: one row per filter entry (c, i, j), one column per output pixel (n, oh, ow).
    col = im2col(x.transpose(1, 0, 2, 3), KH, KW, SH, SW, PH, PW)   # (C, KH, KW, N, OH, OW)
    col = col.reshape(G, C // G * KH * KW, N * OH * OW)              # one matrix per group
    y = xp.matmul(w.reshape(G, O // G, -1), col)                     # (G, O/G, N*OH*OW)
    y = y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)                # (N, O, OH, OW)
    if b is not None:
        y = y + b.reshape(1, O, 1, 1)
    return y, (col, w, (H, W), stride, padding)


def conv_backward(dy, cache):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C/G, KH, KW), db (O,)."""
    xp = xp_of(dy)
    col, w, (H, W), (SH, SW), (PH, PW) = cache
    N, O, OH, OW = dy.shape
    G = col.shape[0]
    _, _, KH, KW = w.shape
    C = w.shape[1] * G
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(G, O // G, N * OH * OW)
    db = dy.sum(axis=(0, 2, 3))
    # y = w @ col  =>  dw = dy @ col^T  and  dcol = w^T @ dy
    dw = xp.matmul(dy_mat, col.transpose(0, 2, 1)).reshape(w.shape)
    dcol = xp.matmul(w.reshape(G, O // G, -1).transpose(0, 2, 1), dy_mat)
    dcol = dcol.reshape(C, KH, KW, N, OH, OW)
    dx = col2im(dcol, H, W, SH, SW, PH, PW).transpose(1, 0, 2, 3)     # (N, C, H, W)
    return dx, dw, db


def _pair(v, name):
    """An int or a pair of ints -> a pair of ints (height, width)."""
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(a, int) for a in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return pair


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every framework), NCHW.

    x (N, C, H, W) -> y (N, O, OH, OW) with OH = floor((H + 2*PH - KH) / SH) + 1.
    weight (O, C/groups, KH, KW), bias (O,). With ``groups`` = G the channels are split
    into G independent convolutions (ResNeXt's grouped 3x3), each a matrix multiply.

    ``padding``: an int or (PH, PW), PyTorch's symmetric padding; ``"valid"`` (no padding); or
    ``"same"``, TensorFlow's rule at any stride: OH = ceil(H / SH), and the padding that takes,
    total = max((OH - 1) * SH + KH - H, 0), is split with the odd pixel after (bottom, right).
    It depends on the input size, so forward computes it (minires/nn/padding.py:same_padding),
    pads a copy of x, runs a valid convolution; backward crops the gradient. This is not
    PyTorch's ``padding="same"``, which exists only at stride 1: there the two agree (odd K:
    (K - 1) / 2 each side, which this layer then uses as ordinary symmetric padding, no copy).
    At stride 2 they differ: a 7x7/2 conv on 224 pads 2 before and 3 after, ``padding=3`` pads 3 and 3.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        from .padding import resolve_padding, symmetric_same   # here: padding.py builds on this file
        self.same, self.padding = symmetric_same(resolve_padding(padding, "Conv2d"), self.kernel_size, self.stride)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
        KH, KW = self.kernel_size
        fan_in = in_channels // groups * KH * KW
        bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default initialisation
        self.weight = Parameter(init.uniform((out_channels, in_channels // groups, KH, KW), bound))
        self.bias = Parameter(init.uniform((out_channels,), bound)) if bias else None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.same:
            s += ", padding='same'"
        elif self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")

    def forward(self, x):
        """x (N, C, H, W) -> (N, O, OH, OW): ``conv_forward`` on the plain path, else ``_forward_fast``."""
        self.check_input(x, ndim=4, channels=self.in_channels)
        if self.same:
            from .padding import pad_same
            x = pad_same(self, x, 0.0)            # TensorFlow's "same": pad a copy, then a valid conv
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        _, _, H, W = x.shape
        if out_size(H, KH, SH, PH) < 1 or out_size(W, KW, SW, PW) < 1:
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} kernel "
                             f"with padding {self.padding}; it needs at least {KH - 2 * PH}x{KW - 2 * PW}")
        if is_plain():
            bias = None if self.bias is None else self.bias.data
            y, cache = conv_forward(x, self.weight.data, bias, self.stride, self.padding, self.groups)
            self.save_for_backward(*cache)
            return y
        return self._forward_fast(x)

    def backward(self, grad_out):
        """grad_out (N, O, OH, OW) -> grad wrt x (N, C, H, W); adds into weight.grad and bias.grad.

        The path the forward took: ``conv_backward`` (plain) or ``_backward_fast``.
        """
        if is_plain():
            dx, dw, db = conv_backward(grad_out, self.saved)
            self.weight.grad += dw
            if self.bias is not None:
                self.bias.grad += db
        else:
            dx = self._backward_fast(grad_out)
        if self.same:
            from .padding import crop_same
            dx = crop_same(self, dx)              # the padded border's gradient goes nowhere
        return dx

    # ----- the fast path -----
    def _forward_fast(self, x):
        """``conv_forward``'s numbers: 1x1 without im2col, columns a chunk of images at a time into
        a workspace, the output stored channel-major (``memory.py``); keeps x, not the columns.

        Plain twin: minires/nn/conv.py:conv_forward.
        """
        xp = xp_of(x)
        N, C, H, W = x.shape
        O, G = self.out_channels, self.groups
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
        w = self.weight.data.reshape(G, O // G, C // G * KH * KW)
        y = xp.empty((G, O // G, N, OH * OW), dtype=x.dtype)      # channel-major: (O, N, OH, OW)
        if self._pointwise():
            # a 1x1 kernel: the (strided) input already is the column matrix, no im2col at all
            xp.matmul(w, self._pointwise_columns(x), out=y.reshape(G, O // G, N * OH * OW))
        else:
            for n0, n1 in self._chunks(N, OH * OW, x.dtype.itemsize):
                col = self._columns(x, n0, n1, OH, OW)             # (G, C/G*KH*KW, n*OH*OW)
                xp.matmul(w, col, out=y[:, :, n0:n1].reshape(G, O // G, -1))
        y = channel_major(y.reshape(O, N, OH, OW))                # (N, O, OH, OW), a view
        if self.bias is not None:
            y += self.bias.data.reshape(1, O, 1, 1)
        self.save_for_backward(x)     # x itself, no copy: backward recomputes the columns from it
        return y

    def _backward_fast(self, grad_out):
        """``conv_backward``'s numbers by one of three algorithms, each a method of its own.

        - 1x1 kernel: the columns are x itself (``_backward_pointwise``);
        - stride 1 and padding < kernel: dx as a convolution of dy with the flipped kernel,
          dw from that convolution's columns (``_backward_by_flipped_conv``). That convolution
          pads dy by K - 1 - P on each side, a real padding only while P <= K - 1. A wider
          padding would have to be a crop (rare: outputs that see nothing but padding);
        - everything else, and those: as ``conv_backward``, a chunk of images at a time
          (``_backward_by_col2im``).

        Plain twin: minires/nn/conv.py:conv_backward.
        """
        xp = xp_of(grad_out)
        x, = self.saved
        N, C, H, W = x.shape
        _, O, OH, OW = grad_out.shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        dy = xp.ascontiguousarray(channel_major(grad_out)).reshape(self.groups, O // self.groups, N, OH * OW)
        if self.bias is not None:
            self.bias.grad += dy.reshape(O, -1).sum(axis=1)
        if self._pointwise():
            return self._backward_pointwise(dy, x, OH, OW)
        if (SH, SW) == (1, 1) and PH < KH and PW < KW:
            return self._backward_by_flipped_conv(dy, x, OH, OW)
        return self._backward_by_col2im(dy, x, OH, OW)

    def _backward_pointwise(self, dy, x, OH, OW):
        """1x1 kernel: dy (G, O/G, N, OH*OW) -> dx (N, C, H, W); adds into weight.grad.

        The columns are the (strided) input itself, so dw = dy @ x^T and dx = w^T @ dy, with
        no im2col and no col2im; with a stride, the pixels the kernel skipped get gradient 0.
        """
        xp = xp_of(dy)
        N, C, H, W = x.shape
        G, SH, SW = self.groups, *self.stride
        dy = dy.reshape(G, -1, N * OH * OW)
        wT = self.weight.data.reshape(G, -1, C // G).transpose(0, 2, 1)
        dw = xp.matmul(dy, self._pointwise_columns(x).transpose(0, 2, 1))
        self.weight.grad += dw.reshape(self.weight.grad.shape)
        dcol = xp.matmul(wT, dy).reshape(C, N, OH, OW)
        if (SH, SW) == (1, 1):
            return channel_major(dcol)
        dx = xp.zeros((C, N, H, W), dtype=dy.dtype)
        dx[:, :, ::SH, ::SW] = dcol
        return channel_major(dx)

    def _backward_by_col2im(self, dy, x, OH, OW):
        """The general case: dy (G, O/G, N, OH*OW) -> dx (N, C, H, W); adds into weight.grad.

        ``conv_backward``'s dw = dy @ col^T and dcol = w^T @ dy, then col2im, a chunk of
        images at a time, with the columns recomputed from x (the forward did not keep them).
        """
        xp = xp_of(dy)
        N, C, H, W = x.shape
        O, G = self.out_channels, self.groups
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        wT = self.weight.data.reshape(G, O // G, C // G * KH * KW).transpose(0, 2, 1)
        dwT = 0  # dw transposed, (G, C/G*KH*KW, O/G)
        for n0, n1 in self._chunks(N, OH * OW, x.dtype.itemsize):
            col = self._columns(x, n0, n1, OH, OW)                 # recomputed from x
            # dw = dy @ col^T, computed as its transpose col @ dy^T: the same numbers, but
            # OpenBLAS runs this orientation up to 2x faster when O is small (16-64 channels)
            dwT += xp.matmul(col, dy[:, :, n0:n1].reshape(G, O // G, -1).transpose(0, 2, 1))
        self.weight.grad += dwT.transpose(0, 2, 1).reshape(self.weight.grad.shape)
        dx = xp.zeros((C, N, H, W), dtype=dy.dtype)                # channel-major, like the forward
        for n0, n1 in self._chunks(N, OH * OW, x.dtype.itemsize):
            dcol = workspace("conv.dcol", (G, C // G * KH * KW, (n1 - n0) * OH * OW), dy.dtype, xp)
            xp.matmul(wT, dy[:, :, n0:n1].reshape(G, O // G, -1), out=dcol)
            col2im_add(dcol.reshape(C, KH, KW, n1 - n0, OH, OW), dx[:, n0:n1], SH, SW, PH, PW)
        return channel_major(dx)

    def _backward_by_flipped_conv(self, dy, x, OH, OW):
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
        O, G = self.out_channels, self.groups
        (KH, KW), (PH, PW) = self.kernel_size, self.padding
        # w (G, O/G, C/G, KH, KW) -> flipped (G, C/G, O/G, KH, KW): the filters of the transposed conv
        w = self.weight.data.reshape(G, O // G, C // G, KH, KW)[:, :, :, ::-1, ::-1]
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
        self.weight.grad += dw.reshape(self.weight.grad.shape)
        return channel_major(dx.reshape(C, N, H, W))

    # ----- the fast path's helpers -----
    def _pointwise(self):
        return self.kernel_size == (1, 1) and self.padding == (0, 0)

    def _pointwise_columns(self, x):
        """1x1 kernel: x (N, C, H, W) -> (G, C/G, N*OH*OW), a view when x is channel-major and unstrided."""
        SH, SW = self.stride
        x = channel_major(x)[:, :, ::SH, ::SW]
        return x.reshape(self.groups, self.in_channels // self.groups, -1)

    def _columns(self, x, n0, n1, OH, OW):
        """im2col of images n0..n1-1 into a reused workspace -> (G, C/G*KH*KW, (n1-n0)*OH*OW)."""
        xp = xp_of(x)
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        C, G = self.in_channels, self.groups
        col = workspace("conv.col", (C, KH, KW, n1 - n0, OH, OW), x.dtype, xp)
        im2col_into(channel_major(x)[:, n0:n1], col, KH, KW, SH, SW, PH, PW)
        return col.reshape(G, C // G * KH * KW, -1)

    def _chunks(self, N, pixels, itemsize):
        KH, KW = self.kernel_size
        return batch_chunks(N, self.in_channels * KH * KW * pixels * itemsize, pixels)


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
