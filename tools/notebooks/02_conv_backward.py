# Source of tutorials/02_conv_backward.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 2. Backward through a convolution
#
# Training needs, for every layer, the gradient of the loss $L$ with respect to the layer's
# input and parameters, given the gradient with respect to its output (sent back by the layer
# above). For the convolution of notebook 1, written as $Y = W_{\mathrm{row}} X_{\mathrm{col}} + b$,
# the three gradients are matrix products, and the way back from columns to pixels is
# **col2im**, which must **add** where windows overlap.
#
# In this notebook you will
#
# 1. see why col2im adds, and check the *adjoint identity* that makes it the right way back;
# 2. derive $dW$, $db$ and $dx$ as matrix products and code them in a few lines;
# 3. compare with `minires.nn.Conv2d.backward`, and gradient-check both with
#    `minires.check_module` / `minires.check_function`, including a planted bug.
#
# Notation: for any array $A$ in the network, $dA$ means $\partial L / \partial A$, an array of
# the same shape as $A$.

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from minires import check_function, check_module, nn
from minires.nn.im2col import col2im, im2col

rng = np.random.default_rng(0)

# %% [markdown]
# ## From columns back to pixels
#
# im2col is a *linear* map: every entry of $X_{\mathrm{col}}$ is a copy of one pixel (or a zero
# of the padding). Write it as a big 0/1 matrix $A$, so that $\mathrm{vec}(X_{\mathrm{col}}) = A\,\mathrm{vec}(x)$.
# The chain rule through a linear map multiplies by its transpose:
#
# $$ dx = A^\top \, dX_{\mathrm{col}} . $$
#
# Row $u$ of $A^\top$ (pixel $u$) has a 1 at every place of $X_{\mathrm{col}}$ that holds a copy
# of pixel $u$. So $A^\top$ **sums** the gradient over all the copies: a pixel that sits in
# nine windows influenced nine outputs, and its gradient is the sum of the nine contributions.
# That is col2im: the same strided loop as im2col, with `+=` instead of `=`.
#
# You can see the copies by sending ones through and back: `col2im(im2col(1))` counts, for
# every pixel, how many windows contain it.

# %%
def n_windows(H, W, k, s, p):
    """For each pixel of an H x W image: in how many k x k windows (stride s, padding p) it appears."""
    ones = np.ones((1, 1, H, W))
    return col2im(im2col(ones, k, k, s, s, p, p), H, W, s, s, p, p)[0, 0]


fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (size, k, s, p) in zip(axes, [(7, 3, 1, 1), (7, 3, 2, 1), (6, 2, 2, 0)]):
    counts = n_windows(size, size, k, s, p)
    ax.imshow(counts, cmap="Oranges", vmin=0, vmax=9)
    for (r, c), v in np.ndenumerate(counts):
        ax.text(c, r, f"{v:g}", ha="center", va="center", color="white" if v > 6 else "black")
    ax.set_title(f"{k}x{k} kernel, stride {s}, padding {p}")
    ax.set_xticks([])
    ax.set_yticks([])
plt.suptitle("col2im(im2col(ones)): how many windows contain each pixel")
plt.tight_layout()
plt.show()

# %% [markdown]
# With a $3 \times 3$ kernel and stride 1 an inner pixel is in 9 windows, an edge pixel in 6,
# a corner in 4. With stride 2 the windows overlap only on every other row and column (1, 2
# or 4 windows). With a $2 \times 2$ kernel and stride 2 they do not overlap at all: every pixel
# is in exactly one window, and "add" or "overwrite" would give the same answer. That is why
# an overwriting col2im can survive a test that uses only non-overlapping windows.
#
# ## The adjoint identity
#
# The transpose of a linear map $A$ is the map $A^\top$ with
#
# $$ \langle A x, c \rangle = \langle x, A^\top c \rangle \quad \text{for every } x \text{ and } c , $$
#
# where $\langle u, v \rangle = \sum u \cdot v$ summed over all entries. If col2im is the transpose
# of im2col, then $\langle \mathrm{im2col}(x), c \rangle = \langle x, \mathrm{col2im}(c) \rangle$
# for random $x$ and $c$. Check it, for several kernels, strides and paddings:

# %%
def adjoint_gap(col2im_fn, shape, k, s, p):
    """<im2col(x), c> - <x, col2im(c)> for random x (A, B, H, W) and c (float64)."""
    x = rng.standard_normal(shape)
    cols = im2col(x, k, k, s, s, p, p)
    c = rng.standard_normal(cols.shape)
    return np.sum(cols * c), np.sum(x * col2im_fn(c, shape[2], shape[3], s, s, p, p))


print(f"{'kernel':>6} {'stride':>6} {'padding':>7} {'<im2col(x), c>':>16} {'<x, col2im(c)>':>16}")
for k, s, p in [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 2, 2), (2, 2, 0), (3, 3, 0)]:
    lhs, rhs = adjoint_gap(col2im, (2, 3, 7, 8), k, s, p)
    print(f"{k:>6} {s:>6} {p:>7} {lhs:>16.10f} {rhs:>16.10f}")

# %% [markdown]
# Equal to the last digit. Now the classic bug: a col2im that *writes* (`=`) instead of
# *adding* (`+=`), so that where windows overlap only the last copy's gradient survives.

# %%
def col2im_overwriting(col, H, W, SH, SW, PH, PW):
    """minires's col2im with '=' where it has '+=': WRONG wherever windows overlap."""
    A, KH, KW, B, OH, OW = col.shape
    img = np.zeros((A, B, H + 2 * PH + SH - 1, W + 2 * PW + SW - 1))
    for i in range(KH):
        for j in range(KW):
            img[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW] = col[:, i, j]  # the bug: '=' instead of '+='
    return img[:, :, PH:H + PH, PW:W + PW]


for k, s, p in [(3, 1, 1), (2, 2, 0)]:
    lhs, rhs = adjoint_gap(col2im_overwriting, (2, 3, 7, 8), k, s, p)
    verdict = "holds" if abs(lhs - rhs) < 1e-9 else "FAILS"
    print(f"kernel {k}, stride {s}: <im2col(x), c> = {lhs:.4f}, <x, col2im_overwriting(c)> = {rhs:.4f}  {verdict}")

# %% [markdown]
# The identity fails as soon as windows overlap, and holds when they do not: overwriting is
# wrong, but only a test with overlapping windows can tell.
#
# ## The three gradients as matrix products
#
# Forward, with $M = N \cdot OH \cdot OW$ output positions:
#
# $$ Y = W_{\mathrm{row}} X_{\mathrm{col}} + b \mathbf{1}^\top, \qquad
#    Y[o, m] = \sum_k W_{\mathrm{row}}[o, k] \, X_{\mathrm{col}}[k, m] + b[o] . $$
#
# Each weight $W_{\mathrm{row}}[o, k]$ meets every column $m$, so its gradient sums over them;
# each column entry $X_{\mathrm{col}}[k, m]$ meets every filter $o$; each bias meets every column:
#
# $$ dW_{\mathrm{row}}[o, k] = \sum_m dY[o, m] \, X_{\mathrm{col}}[k, m]
#    \;\;\Longrightarrow\;\; dW_{\mathrm{row}} = dY \, X_{\mathrm{col}}^\top \qquad (O \times C K_H K_W) $$
#
# $$ dX_{\mathrm{col}}[k, m] = \sum_o W_{\mathrm{row}}[o, k] \, dY[o, m]
#    \;\;\Longrightarrow\;\; dX_{\mathrm{col}} = W_{\mathrm{row}}^\top \, dY \qquad (C K_H K_W \times M) $$
#
# $$ db[o] = \sum_m dY[o, m] , \qquad dx = \mathrm{col2im}(dX_{\mathrm{col}}) . $$
#
# A shape check is a good habit: each gradient has the shape of the thing it is the gradient
# of, and there is only one way to multiply the available matrices to get it.
#
# In code: the forward keeps $X_{\mathrm{col}}$ (a *cache*) because the backward needs it.

# %%
def conv2d_forward(x, w, b, stride=1, padding=0):
    """x (N, C, H, W) -> y (N, O, OH, OW), and the cache the backward needs."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    col = im2col(x.transpose(1, 0, 2, 3), KH, KW, stride, stride, padding, padding)  # (C, KH, KW, N, OH, OW)
    OH, OW = col.shape[-2:]
    X_col = col.reshape(C * KH * KW, N * OH * OW)
    Y = w.reshape(O, -1) @ X_col + b.reshape(O, 1)
    return Y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3), (X_col, x.shape, w, stride, padding)


def conv2d_backward(dy, cache, col2im_fn=col2im):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C, KH, KW), db (O,)."""
    X_col, (N, C, H, W), w, stride, padding = cache
    O, _, KH, KW = w.shape
    OH, OW = dy.shape[2:]
    dY = dy.transpose(1, 0, 2, 3).reshape(O, N * OH * OW)  # the same layout as Y
    dw = (dY @ X_col.T).reshape(w.shape)                  # dW_row = dY X_col^T
    db = dY.sum(axis=1)                                    # sum over the output positions
    dX_col = w.reshape(O, -1).T @ dY                       # dX_col = W_row^T dY
    dx = col2im_fn(dX_col.reshape(C, KH, KW, N, OH, OW), H, W, stride, stride, padding, padding)
    return dx.transpose(1, 0, 2, 3), dw, db

# %% [markdown]
# `minires.nn.Conv2d.backward` does the same on the plain path: open
# `minires/nn/conv.py:conv_backward` and find `dw = xp.matmul(dy_mat, col.transpose(0, 2, 1))` and
# `dcol = xp.matmul(w.reshape(G, O // G, -1).transpose(0, 2, 1), dy_mat)`. The layer returns $dx$ and **adds** $dw$ and $db$
# into `conv.weight.grad` and `conv.bias.grad`, so that a layer used twice, or a batch split in
# two, accumulates its gradients; `zero_grad()` resets them.

# %%
nn.manual_seed(0)
conv = nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1).to(dtype=np.float64)
x = rng.standard_normal((2, 3, 7, 7))
y = conv(x)
dy = rng.standard_normal(y.shape)        # stands for the gradient sent back by the layer above
conv.zero_grad()
dx_layer = conv.backward(dy)

y_ours, cache = conv2d_forward(x, conv.weight.data, conv.bias.data, stride=2, padding=1)
dx, dw, db = conv2d_backward(dy, cache)
print("forward:  max |difference| =", np.abs(y - y_ours).max())
print("dx:       max |difference| =", np.abs(dx_layer - dx).max())
print("dweight:  max |difference| =", np.abs(conv.weight.grad - dw).max())
print("dbias:    max |difference| =", np.abs(conv.bias.grad - db).max())

# %% [markdown]
# ## Gradient checks
#
# Agreeing with the library only shows that the two are the same; both could be wrong. A
# **gradient check** compares with numbers that owe nothing to the derivation. Pick a random
# upstream gradient $g$ and the scalar $L(x) = \sum y(x) \cdot g$, whose gradient is exactly
# what the backward computes from $g$. Then nudge one entry of $x$ by $\pm \varepsilon$:
#
# $$ \frac{\partial L}{\partial x_i} \approx \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2 \varepsilon} , $$
#
# correct to about $\varepsilon^2$. In float64 with $\varepsilon = 10^{-6}$ a right backward
# agrees to about $10^{-9}$ in relative error, a wrong one to about $10^{-1}$ or worse.
# `minires.check_module(layer, x)` does this for the input and every parameter, on a float64
# copy of the layer, and prints a table (large tensors are checked on a random subset of
# their entries, 200 by default: the column "checked"):

# %%
print(check_module(nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1), x))

# %% [markdown]
# For plain functions, `minires.check_function(forward, backward, *inputs)` does the same:
# `backward(g)` receives the upstream gradient and returns one gradient per input. Here is our
# own pair, first as written, then with the overwriting col2im planted in it, on a $3 \times 3$
# kernel with stride 1 (heavily overlapping windows):

# %%
def make_pair(col2im_fn):
    """forward(x, w, b) and backward(g) for check_function; backward uses the last forward's cache."""
    saved = {}

    def forward(x, w, b):
        y, saved["cache"] = conv2d_forward(x, w, b, stride=1, padding=1)
        return y

    def backward(g):
        return conv2d_backward(g, saved["cache"], col2im_fn)

    return forward, backward


x = rng.standard_normal((2, 3, 5, 5))
w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
for col2im_fn in (col2im, col2im_overwriting):
    result = check_function(*make_pair(col2im_fn), x, w, b, names=["x", "w", "b"])
    result.name = f"conv2d_backward with {col2im_fn.__name__}"
    print(result, end="\n\n")

# %% [markdown]
# The bug shows up where it lives: $dw$ and $db$ never pass through col2im and are still
# right; only $dx$ fails, and the table names the worst entry.
#
# ## Summary
#
# * im2col copies pixels into columns; its transpose, col2im, sums the gradient of all the
#   copies back into each pixel. The adjoint identity $\langle \mathrm{im2col}(x), c \rangle =
#   \langle x, \mathrm{col2im}(c) \rangle$ is a one-line test of that.
# * With $Y = W_{\mathrm{row}} X_{\mathrm{col}} + b$: $dW_{\mathrm{row}} = dY X_{\mathrm{col}}^\top$,
#   $dX_{\mathrm{col}} = W_{\mathrm{row}}^\top dY$, $db = $ row sums of $dY$, $dx = \mathrm{col2im}(dX_{\mathrm{col}})$.
# * A gradient check with a random upstream gradient catches a wrong backward and says which
#   tensor is wrong.
#
# **Next:** [03_batch_norm.ipynb](03_batch_norm.ipynb), a layer whose backward has a surprise in it.
