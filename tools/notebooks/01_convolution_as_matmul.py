# Source of tutorials/01_convolution_as_matmul.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 1. Convolution as a matrix multiply
#
# A convolution layer slides small filters over an image and takes a dot product at every
# position. Written as loops, straight from its definition, it is slow in Python. The trick
# that every framework uses is to copy every window of the image into one column of a matrix,
# **im2col** ("image to columns"); after that, *all* the dot products of the layer are a
# single matrix multiplication, the operation computers do fastest.
#
# In this notebook you will
#
# 1. write a convolution as nested loops, from the definition;
# 2. build the im2col matrix of a tiny image by hand and look at it;
# 3. read the library's own convolution, `minires/nn/conv.py:conv_forward` (im2col plus one `@`),
#    and check it against the loops and against `minires.nn.Conv2d`, the layer the ResNets are
#    built from.
#
# The next notebook runs this backwards, and meets im2col's partner, col2im.

# %%
%matplotlib inline
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

from minires import nn
from minires.nn.conv import conv_forward
from minires.nn.im2col import im2col

rng = np.random.default_rng(0)

# %% [markdown]
# ## The definition
#
# A batch $x$ of shape $(N, C, H, W)$ ($N$ images of $C$ channels) and $O$ filters $w$ of
# shape $(O, C, K_H, K_W)$ with biases $b$ give the output
#
# $$ y[n, o, p, q] = b[o] + \sum_{c=0}^{C-1} \sum_{i=0}^{K_H-1} \sum_{j=0}^{K_W-1}
#    w[o, c, i, j] \; x_{\mathrm{pad}}[n, c, \; S p + i, \; S q + j] $$
#
# where $x_{\mathrm{pad}}$ is $x$ with $P$ rows and columns of zeros around it (the *padding*)
# and $S$ is the *stride*, the step between windows. The output $y$ has shape $(N, O, OH, OW)$ with
#
# $$ OH = \left\lfloor \frac{H + 2P - K_H}{S} \right\rfloor + 1, \qquad
#    OW = \left\lfloor \frac{W + 2P - K_W}{S} \right\rfloor + 1 . $$
#
# (Strictly, this is a *cross-correlation*: the filter is not flipped. Every deep learning
# framework calls it a convolution anyway, and so do we.)
#
# The code says the same: for every image $n$, filter $o$ and output position $(p, q)$, take
# the window under the filter and sum the products.

# %%
def conv2d_loops(x, w, b, stride=1, padding=0):
    """x (N, C, H, W), w (O, C, KH, KW), b (O,) -> y (N, O, OH, OW), from the definition."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # zeros around each image
    y = np.zeros((N, O, OH, OW), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for p in range(OH):
                for q in range(OW):
                    window = x_pad[n, :, stride * p:stride * p + KH, stride * q:stride * q + KW]  # (C, KH, KW)
                    y[n, o, p, q] = np.sum(window * w[o]) + b[o]  # the three sums, over c, i and j
    return y

# %% [markdown]
# A first look: an image that is dark on the left and bright on the right, and a filter that
# answers to brightness increasing from left to right (a Sobel filter). The output is large
# exactly where a window straddles the edge.

# %%
x_edge = np.zeros((1, 1, 5, 5))
x_edge[..., 2:] = 1.0                                   # columns 2, 3, 4 are bright
w_sobel = np.array([[-1.0, 0.0, 1.0],
                    [-2.0, 0.0, 2.0],
                    [-1.0, 0.0, 1.0]]).reshape(1, 1, 3, 3)  # (O=1, C=1, KH=3, KW=3)
print(x_edge[0, 0])
print(conv2d_loops(x_edge, w_sobel, np.zeros(1))[0, 0])     # 5 - 3 + 1 = 3 positions each way

# %% [markdown]
# ## Every output is a dot product
#
# Look at the innermost line again: `np.sum(window * w[o])`. Flatten the window into a vector
# of length $C K_H K_W$ and the filter likewise: it is a dot product. The same window meets
# every filter, and the same filter meets every window. So lay out
#
# * $X_{\mathrm{col}}$: one **column per window** (per output position $(n, p, q)$), holding that
#   window's $C K_H K_W$ values, shape $(C K_H K_W,\; N \cdot OH \cdot OW)$;
# * $W_{\mathrm{row}}$: one **row per filter**, shape $(O,\; C K_H K_W)$;
#
# and every output of the layer is in one product,
#
# $$ Y = W_{\mathrm{row}} \, X_{\mathrm{col}} + b \mathbf{1}^\top ,
#    \qquad Y \text{ of shape } (O,\; N \cdot OH \cdot OW). $$
#
# Building $X_{\mathrm{col}}$ is im2col. Here it is by loops, one window at a time:

# %%
def im2col_loops(x, KH, KW, stride=1, padding=0):
    """x (N, C, H, W) -> X_col (C*KH*KW, N*OH*OW): window (n, p, q) is column (n*OH + p)*OW + q."""
    N, C, H, W = x.shape
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.zeros((C * KH * KW, N * OH * OW), dtype=x.dtype)
    for n in range(N):
        for p in range(OH):
            for q in range(OW):
                window = x_pad[n, :, stride * p:stride * p + KH, stride * q:stride * q + KW]
                cols[:, (n * OH + p) * OW + q] = window.reshape(-1)  # rows in (c, i, j) order
    return cols

# %% [markdown]
# ## A picture of the im2col matrix
#
# A $4 \times 4$ image holding the numbers 1 to 16, a $3 \times 3$ filter, padding 1, stride 1:
# there are $4 \times 4 = 16$ windows, so $X_{\mathrm{col}}$ is $9 \times 16$. The window of
# output position $(p, q) = (1, 2)$ is outlined on the image, and its column in the matrix.

# %%
x_tiny = np.arange(1, 17, dtype=float).reshape(1, 1, 4, 4)
cols = im2col_loops(x_tiny, 3, 3, stride=1, padding=1)
print("X_col shape:", cols.shape)


def show_matrix(ax, m, title):
    ax.imshow(m, cmap="Blues", vmin=0, vmax=20)
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=8)
    ax.set_title(title)
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))


p, q = 1, 2
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 3]})
show_matrix(ax0, x_tiny[0, 0], "image (4 x 4)")
# the window of (p, q) covers padded rows p..p+2, i.e. image rows p-1..p+1 (padding 1)
ax0.add_patch(plt.Rectangle((q - 1 - 0.5, p - 1 - 0.5), 3, 3, fill=False, lw=3, ec="tab:red"))
show_matrix(ax1, cols, "X_col: one column per window (rows: filter entries i, j)")
ax1.add_patch(plt.Rectangle((p * 4 + q - 0.5, -0.5), 1, 9, fill=False, lw=3, ec="tab:red"))
ax1.set_xlabel("window (p, q) -> column 4p + q")
ax1.set_yticks(range(9), [f"({i},{j})" for i in range(3) for j in range(3)])
plt.tight_layout()
plt.show()

# %% [markdown]
# Things to notice:
#
# * the red column is the red window read row by row (zeros where the window hangs over the
#   padding);
# * every pixel appears in up to $K_H K_W = 9$ columns: the matrix is about 9 times bigger than
#   the image. That memory is the price of turning the layer into one matrix multiply;
# * each **row** is the padded image shifted by the filter offset $(i, j)$. Row $(0, 0)$ is
#   the top-left $4 \times 4$ of the padded image, row $(1, 1)$ the image itself.
#
# The last point is how `minires.nn.im2col` works: instead of one loop step per window (there
# are $N \cdot OH \cdot OW$ of them), it loops over the $K_H K_W$ filter offsets, and each step
# copies a whole shifted, strided view of the image at once,
# `col[:, i, j] = img[:, :, i : i + S*OH : S, j : j + S*OW : S]`.

# %%
x_pad = np.pad(x_tiny[0, 0], 1)
for i, j in [(0, 0), (1, 1), (2, 0)]:
    same = np.array_equal(cols[3 * i + j].reshape(4, 4), x_pad[i:i + 4, j:j + 4])
    print(f"row ({i}, {j}) of X_col is the padded image shifted by ({i}, {j}): {same}")

# %% [markdown]
# `minires.nn.im2col(img, KH, KW, SH, SW, PH, PW)` takes the image as $(A, B, H, W)$ and returns
# $(A, K_H, K_W, B, OH, OW)$. A convolution passes the image *channels first*,
# `x.transpose(1, 0, 2, 3)` of shape $(C, N, H, W)$, so that a reshape gives exactly our
# matrix: rows $(c, i, j)$, columns $(n, p, q)$.

# %%
col = im2col(x_tiny.transpose(1, 0, 2, 3), 3, 3, 1, 1, 1, 1)  # (C, KH, KW, N, OH, OW)
print("minires im2col:", col.shape, "-> reshaped", col.reshape(9, 16).shape)
print("same matrix as the loops:", np.array_equal(col.reshape(9, 16), cols))

# %% [markdown]
# ## The convolution in one matrix multiply
#
# With im2col, the whole layer is three steps: columns, one product, and a reshape of
# $Y$ from $(O, N \cdot OH \cdot OW)$ back to $(N, O, OH, OW)$. That is the library's textbook
# convolution, `minires/nn/conv.py:conv_forward`, the function `minires.nn.Conv2d` runs on its
# plain path. Rather than write a second copy, open it (here, print its source). It does one
# thing more than our matrix $Y = W_{\mathrm{row}} X_{\mathrm{col}} + b$: with `groups` $G > 1$
# (ResNeXt) the channels are split into $G$ independent convolutions, so the
# columns and the filters are reshaped into $G$ matrices and multiplied pairwise by
# `xp.matmul`; for $G = 1$ that is exactly our product. (`xp` is NumPy, or CuPy on a GPU:
# notebook 10.) It returns the output and a *cache*, what the backward will need (notebook 2).

# %% [markdown]
# The product's shapes for a real layer, the first 3x3 convolution of ResNet-18's second stage,
# found by running it (`draw_conv_matmul`): the weights as rows, the image's windows as columns.

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_conv_matmul();

# %%
print(inspect.getsource(conv_forward))


def conv2d_im2col(x, w, b, stride=1, padding=0):
    """The library's conv_forward, called with one stride and padding for both axes; the output only."""
    return conv_forward(x, w, b, (stride, stride), (padding, padding))[0]

# %% [markdown]
# Does it agree with the loops? On random data, for several kernel sizes, strides and
# paddings (float64, so the only differences are rounding, about $10^{-15}$):

# %%
x = rng.standard_normal((2, 3, 7, 7))
print(f"{'kernel':>6} {'stride':>6} {'padding':>7} {'output shape':>16} {'max |loops - im2col|':>22}")
for k, s, pad in [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 2, 2), (2, 2, 0)]:
    w, b = rng.standard_normal((4, 3, k, k)), rng.standard_normal(4)
    y_loops = conv2d_loops(x, w, b, stride=s, padding=pad)
    y_fast = conv2d_im2col(x, w, b, stride=s, padding=pad)
    print(f"{k:>6} {s:>6} {pad:>7} {str(y_fast.shape):>16} {np.abs(y_loops - y_fast).max():>22.1e}")

# %% [markdown]
# And with the layer the ResNets are made of, `minires.nn.Conv2d`, which keeps its filters in
# `conv.weight.data` and its biases in `conv.bias.data` (float32, initialised like PyTorch's):

# %%
nn.manual_seed(0)
conv = nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1)
x32 = x.astype(np.float32)
y_layer = conv(x32)
y_ours = conv2d_im2col(x32, conv.weight.data, conv.bias.data, stride=2, padding=1)
y_loops = conv2d_loops(x32, conv.weight.data, conv.bias.data, stride=2, padding=1)
print(conv, "->", y_layer.shape, y_layer.dtype)
print("max |layer - im2col| =", np.abs(y_layer - y_ours).max())
print("max |layer - loops|  =", np.abs(y_layer - y_loops).max(), "(float32 sums in another order)")

# %% [markdown]
# ## Why bother: speed
#
# A modest layer, 16 channels in and out, a batch of 8 images of $16 \times 16$. The loops
# run one Python step per output value; im2col runs 9 strided copies and one matrix multiply
# (which NumPy hands to an optimised BLAS library). Your numbers will differ from anyone
# else's; the ratio is the point.

# %%
x_big = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
w_big = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)
b_big = np.zeros(16, dtype=np.float32)

t0 = time.perf_counter()
y_slow = conv2d_loops(x_big, w_big, b_big, padding=1)
t1 = time.perf_counter()
y_fast = conv2d_im2col(x_big, w_big, b_big, padding=1)
t2 = time.perf_counter()
print(f"loops:  {t1 - t0:.3f} s for {y_slow.size} outputs")
print(f"im2col: {t2 - t1:.4f} s, {(t1 - t0) / (t2 - t1):.0f} times faster; "
      f"max difference {np.abs(y_slow - y_fast).max():.1e}")
print(f"X_col holds {16 * 9 * 8 * 16 * 16} numbers for an input of {x_big.size}: "
      f"{16 * 9 * 8 * 16 * 16 / x_big.size:.0f} times more memory")

# %% [markdown]
# ## Summary
#
# * A convolution is a dot product of each filter with each window.
# * im2col lays the windows out as columns, so that the layer is $Y = W_{\mathrm{row}} X_{\mathrm{col}} + b$:
#   one matrix multiply, at the cost of about $K_H K_W$ times the input's memory.
# * `minires.nn.im2col` builds the columns with $K_H K_W$ strided copies (one per filter offset),
#   and `minires/nn/conv.py:conv_forward` is the whole layer as im2col and one matrix multiply
#   (per group, for ResNeXt); `minires.nn.Conv2d` runs it on its plain path, and a faster route
#   to the same numbers by default.
#
# **Next:** [02_conv_backward.ipynb](02_conv_backward.ipynb): the gradients of this layer, and
# why the way back from columns to pixels must *add*.
