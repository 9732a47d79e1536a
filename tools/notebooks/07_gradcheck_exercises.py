# Source of tutorials/07_gradcheck_exercises.ipynb AND tutorials/07_gradcheck_exercises_solutions.ipynb:
# edit here, then run python tools/make_notebooks.py. Code between BEGIN/END SOLUTION becomes a
# NotImplementedError placeholder in the exercise notebook; cells marked only=... go to one notebook.

# %% [markdown] only=exercises
# # 7. Exercises: write the backward passes yourself
#
# Eight backward passes to write, from the simplest to a whole residual block: ReLU, a linear
# layer, a convolution, batch norm (training mode), the basic block, max-pool (with its ties),
# the block that halves the size with a projection shortcut, and a grouped convolution
# (ResNeXt's; notebook 13 explains groups). Each one is checked numerically the moment you run
# its check cell.

# %% [markdown] only=solutions
# # 7. Exercises: solutions
#
# The answers to [07_gradcheck_exercises.ipynb](07_gradcheck_exercises.ipynb), each followed by
# its check; at the end, an example of what the checker says about a wrong answer.

# %% [markdown]
# ## How the checks work
#
# You write each backward as a plain function of the forward's inputs and of `dy`, the gradient
# of the loss with respect to the forward's output; it returns the gradients of the inputs.
# `ex.check_relu(relu_backward)` (and its siblings) then runs `minires.check_function`: float64
# central differences of $L = \sum (\text{forward} \cdot g)$ for a random $g$, compared with what your
# function returns for `dy = g` (notebooks 2 and 3 explain why the $g$ is random). It prints one of
#
# * `PASS`, with the largest relative error (a right answer gives about $10^{-9}$);
# * `FAIL`, with, for every gradient (`dx`, `dW`, `db`, `dgamma` ...), its relative error, the entries
#   where yours and the numerical one differ most, and a hint: a wrong shape or a transpose, a
#   stray factor, or one of the usual mistakes (a forgotten term, a missing shortcut ...);
# * `ERROR`, if your function raised an exception: which, and on which line;
# * `not done yet`, while your function still raises `NotImplementedError`.
#
# Every placeholder below raises `NotImplementedError`, and the checks catch it, so this notebook
# runs from top to bottom at any time (*Run All*) and tells you how far you are. Each check also
# returns a result: `result.ok` is `True` once it passes.
#
# The forwards you differentiate are in `minires.teach.exercises` (`ex.relu`, `ex.linear`, `ex.conv2d`,
# `ex.batchnorm`, `ex.basic_block`, `ex.maxpool`, `ex.projection_block`, `ex.grouped_conv2d`):
# float64 NumPy, a few
# lines each, most of them calling the library's textbook forwards
# (`minires/nn/conv.py:conv_forward`, `minires/nn/norm.py:batchnorm_forward`,
# `minires/nn/pool.py:maxpool_forward`). Print one with
# `print(inspect.getsource(ex.conv2d))`.

# %%
import inspect

import numpy as np

import minires.teach.exercises as ex
from minires.nn import col2im, im2col

results = {}  # exercise name -> the checker's result

# %% [markdown]
# ## Exercise 1: ReLU
#
# $y = \max(x, 0)$, elementwise. Return $dx$, the same shape as $x$. (Notebook 4.)

# %%
def relu_backward(x, dy):
    """x: the forward's input (any shape); dy: dL/dy, same shape. Returns dx."""
    # BEGIN SOLUTION
    return dy * (x > 0)
    # END SOLUTION

# %%
results["relu"] = ex.check_relu(relu_backward)

# %% [markdown]
# ## Exercise 2: a linear layer
#
# $y = x W^\top + b$ with $x$ of shape $(N, \mathit{IN})$, $W$ of shape $(\mathit{OUT}, \mathit{IN})$
# (PyTorch's layout) and $b$ of shape $(\mathit{OUT},)$. Return `(dx, dW, db)`. Each gradient has the
# shape of its tensor; if you are unsure of a product, write the shapes down: there is only one
# way to combine `dy` $(N, \mathit{OUT})$ with `x` or `W` into each of them.

# %%
def linear_backward(x, W, b, dy):
    """x (N, IN), W (OUT, IN), b (OUT,), dy (N, OUT). Returns dx (N, IN), dW (OUT, IN), db (OUT,)."""
    # BEGIN SOLUTION
    dx = dy @ W              # y[n, o] = sum_i x[n, i] W[o, i]: x[n, i] meets every W[o, i]
    dW = dy.T @ x            # W[o, i] meets every example's x[n, i]: a sum over the batch
    db = dy.sum(axis=0)      # b is added to every row
    return dx, dW, db
    # END SOLUTION

# %%
results["linear"] = ex.check_linear(linear_backward)

# %% [markdown]
# ## Exercise 3: a convolution
#
# `ex.conv2d(x, W, b, stride, padding)` computes $Y = W_{\mathrm{row}} X_{\mathrm{col}} + b$ with im2col (printed
# below). Return `(dx, dW, db)`; when `b` is `None` (no bias), return `None` for `db`. You may use
# `im2col` and `col2im` from `minires.nn` (layout: notebook 1, and their docstrings,
# `minires/nn/im2col.py:im2col` and `minires/nn/im2col.py:col2im`). The check runs two cases: stride 1 and stride 2, both with padding 1.
# Notebook 2 derives the three products.

# %%
print(inspect.getsource(ex.conv2d))

# %%
def conv2d_backward(x, W, b, dy, stride=1, padding=0):
    """x (N, C, H, W), W (O, C, KH, KW), b (O,) or None, dy (N, O, OH, OW). Returns dx, dW, db."""
    # BEGIN SOLUTION
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = dy.shape[2:]
    X_col = im2col(x.transpose(1, 0, 2, 3), KH, KW, stride, stride, padding, padding).reshape(C * KH * KW, -1)
    dY = dy.transpose(1, 0, 2, 3).reshape(O, N * OH * OW)   # the layout of Y = W_row @ X_col
    dW = (dY @ X_col.T).reshape(W.shape)                      # dW_row = dY X_col^T
    dX_col = W.reshape(O, -1).T @ dY                          # dX_col = W_row^T dY
    dx = col2im(dX_col.reshape(C, KH, KW, N, OH, OW), H, Wd, stride, stride, padding, padding)
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    return dx.transpose(1, 0, 2, 3), dW, db
    # END SOLUTION

# %%
results["conv2d"] = ex.check_conv2d(conv2d_backward)

# %% [markdown]
# ## Exercise 4: batch norm, training mode
#
# Per channel, over the $M = N H W$ values: $\mu$, $\sigma^2$ (biased), $s = (\sigma^2 + \varepsilon)^{-1/2}$,
# $\hat x = (x - \mu) s$, $y = \gamma \hat x + \beta$. Return `(dx, dgamma, dbeta)`. Remember that $\mu$ and
# $\sigma^2$ depend on $x$ (notebook 3 derives the two extra terms).

# %%
def batchnorm_backward(x, gamma, beta, dy, eps=1e-5):
    """x (N, C, H, W), gamma (C,), beta (C,), dy (N, C, H, W). Returns dx, dgamma (C,), dbeta (C,)."""
    # BEGIN SOLUTION
    axes = (0, 2, 3)  # everything but the channel
    s = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - x.mean(axis=axes, keepdims=True)) * s
    dgamma = (dy * xhat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    dxhat = dy * gamma.reshape(1, -1, 1, 1)
    dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True)                 # the mean term
              - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))      # the variance term
    return dx, dgamma, dbeta
    # END SOLUTION

# %%
results["batchnorm"] = ex.check_batchnorm(batchnorm_backward)

# %% [markdown]
# ## Exercise 5: the basic block
#
# The residual block of notebook 5 as a function, identity shortcut, no conv biases:
#
# $$ \text{out} = \mathrm{relu}\big(\mathrm{bn}_2(\mathrm{conv}_2(\mathrm{relu}(\mathrm{bn}_1(\mathrm{conv}_1(x))))) + x\big) $$
#
# (`ex.basic_block`, printed below). Return the seven gradients
# `(dx, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2)`. A plan: run the forward again, keeping
# every intermediate array; then go backwards with your four functions above. The gradient goes
# through the final ReLU first, then splits into the main path and the shortcut, and the two
# gradients of $x$ are summed.

# %%
print(inspect.getsource(ex.basic_block))

# %%
def basic_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, dy):
    """x (N, C, H, W), W1 and W2 (C, C, 3, 3), gammas and betas (C,), dy (N, C, H, W)."""
    # BEGIN SOLUTION
    a1 = ex.conv2d(x, W1, padding=1)            # forward again, keeping the intermediates
    b1 = ex.batchnorm(a1, gamma1, beta1)
    h = ex.relu(b1)
    a2 = ex.conv2d(h, W2, padding=1)
    s = ex.batchnorm(a2, gamma2, beta2) + x     # main path + shortcut, before the final ReLU

    g = relu_backward(s, dy)                    # 1. through the final ReLU
    da2, dgamma2, dbeta2 = batchnorm_backward(a2, gamma2, beta2, g)   # 2. the main path, backwards
    dh, dW2, _ = conv2d_backward(h, W2, None, da2, padding=1)
    da1, dgamma1, dbeta1 = batchnorm_backward(a1, gamma1, beta1, relu_backward(b1, dh))
    dx_main, dW1, _ = conv2d_backward(x, W1, None, da1, padding=1)
    dx = dx_main + g                            # 3. the identity shortcut passes g: the two are summed
    return dx, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2
    # END SOLUTION

# %%
results["basic_block"] = ex.check_basic_block(basic_block_backward)

# %% [markdown]
# ## Exercise 6: max-pool, and its ties
#
# `ex.maxpool(x, kernel_size, stride, padding)` keeps the largest value of each window; padding
# never wins (it acts as $-\infty$). Return `dx`: each window's `dy` goes to the position of its
# maximum. The check runs the $2 \times 2$ pool of stride 2 and ResNet's stem pool, $3 \times 3$
# with stride 2 and padding 1, whose windows overlap (notebook 4).
#
# **Ties.** When two entries of a window share the maximum, which gets the gradient? The
# function is not differentiable there: nudge either tied entry up and the output moves with
# it, nudge it down and the output does not move. Central differences then measure half of
# each, which is not the gradient of anything, so a gradient check must use inputs **without**
# ties (the checker's have none), and it cannot tell a backward that sends `dy` to the first
# tied maximum from one that sends the full `dy` to every one of them. Yet the second is wrong:
# it makes the gradient of the window add up to two or three times `dy`, as though the output
# had moved that much. So the checker adds a **rule test**: on an input full of ties it sends
# a 1 into one window at a time and requires it to arrive, in total, exactly once, and only at
# that window's maxima. minires and PyTorch send it to the first maximum (`argmax`); splitting
# it equally among the tied maxima passes the rule too.

# %%
print(inspect.getsource(ex.maxpool))

# %%
def maxpool_backward(x, dy, kernel_size=2, stride=2, padding=0):
    """x (N, C, H, W), dy (N, C, OH, OW). Returns dx (N, C, H, W)."""
    # BEGIN SOLUTION
    N, C, H, W = x.shape
    k, s, p = kernel_size, stride, padding
    OH, OW = dy.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    dx_pad = np.zeros(x_pad.shape)
    n, c = np.indices((N, C))
    for i in range(OH):
        for j in range(OW):
            window = x_pad[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, k * k)
            a, b = np.unravel_index(window.argmax(axis=2), (k, k))   # the FIRST maximum, on a tie
            dx_pad[n, c, i * s + a, j * s + b] += dy[:, :, i, j]     # +=: overlapping windows add
    return dx_pad[:, :, p:p + H, p:p + W]
    # END SOLUTION

# %%
results["maxpool"] = ex.check_maxpool(maxpool_backward)

# %% [markdown]
# ## Exercise 7: the block with a projection ("dashed") shortcut
#
# (Notebooks 5 and 6 show this block; notebook 13 shows what a stride-2 $1 \times 1$ convolution
# reads and skips, which your shortcut's backward must undo.)
#
# Where a stage begins, the block halves the size and changes the number of channels, so $x$
# cannot be added as it is. The paper's option B projects it: a $1 \times 1$ convolution of
# stride 2 and its own batch norm (the dashed arrows of the paper's Figure 3, notebook 6):
#
# $$ \text{out} = \mathrm{relu}\big(\mathrm{bn}_2(\mathrm{conv}_2(\mathrm{relu}(\mathrm{bn}_1(\mathrm{conv}_1(x)))))
#    + \mathrm{bn}_s(\mathrm{conv}_s(x))\big) $$
#
# with $\mathrm{conv}_1$ of stride 2 and padding 1 (`ex.projection_block`, printed below). Return
# the ten gradients `(dx, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2, dWs, dgammas, dbetas)`. The
# plan of exercise 5 works, with one change: the shortcut now has a backward of its own, and
# $x$'s two gradients, one per path, are summed.

# %%
print(inspect.getsource(ex.projection_block))

# %%
def projection_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas, dy):
    """x (N, C, H, W), W1 (O, C, 3, 3), W2 (O, O, 3, 3), Ws (O, C, 1, 1), gammas and betas (O,)."""
    # BEGIN SOLUTION
    a1 = ex.conv2d(x, W1, stride=2, padding=1)  # forward again, keeping the intermediates
    b1 = ex.batchnorm(a1, gamma1, beta1)
    h = ex.relu(b1)
    a2 = ex.conv2d(h, W2, padding=1)
    a_s = ex.conv2d(x, Ws, stride=2)
    s = ex.batchnorm(a2, gamma2, beta2) + ex.batchnorm(a_s, gammas, betas)

    g = relu_backward(s, dy)                    # 1. through the final ReLU
    da2, dgamma2, dbeta2 = batchnorm_backward(a2, gamma2, beta2, g)   # 2. the main path
    dh, dW2, _ = conv2d_backward(h, W2, None, da2, padding=1)
    da1, dgamma1, dbeta1 = batchnorm_backward(a1, gamma1, beta1, relu_backward(b1, dh))
    dx_main, dW1, _ = conv2d_backward(x, W1, None, da1, stride=2, padding=1)
    da_s, dgammas, dbetas = batchnorm_backward(a_s, gammas, betas, g)  # 3. the shortcut, from the same g
    dx_short, dWs, _ = conv2d_backward(x, Ws, None, da_s, stride=2)
    return dx_main + dx_short, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2, dWs, dgammas, dbetas
    # END SOLUTION

# %%
results["projection_block"] = ex.check_projection_block(projection_block_backward)

# %% [markdown]
# ## Exercise 8: a grouped convolution
#
# (Read notebook 13, "Bottlenecks, v1 and v1.5, groups and ResNeXt", first: it explains groups,
# and the book puts it before this chapter.)
#
# `ex.grouped_conv2d(x, W, groups)`: a $3 \times 3$ convolution, stride 1, padding 1, no bias, whose
# $C$ input channels and $O$ filters are split into `groups` $G$ groups; filter group $g$ sees only
# input group $g$, so `W` has shape $(O, C/G, 3, 3)$ (notebook 13). Return `(dx, dW)`. Each group is
# an ordinary convolution of its own slices of `x`, `W` and `dy`: your `conv2d_backward` of
# exercise 3 does the work.

# %%
def grouped_conv2d_backward(x, W, dy, groups=4):
    """x (N, C, H, W), W (O, C/groups, 3, 3), dy (N, O, H, W). Returns dx (N, C, H, W), dW."""
    # BEGIN SOLUTION
    C, O = x.shape[1], W.shape[0]
    dx, dW = np.zeros_like(x), np.zeros_like(W)
    for g in range(groups):                               # each group is an ordinary convolution
        cin = slice(g * C // groups, (g + 1) * C // groups)     # its input channels ...
        cout = slice(g * O // groups, (g + 1) * O // groups)    # ... its filters and dy's channels
        dx[:, cin], dW[cout], _ = conv2d_backward(x[:, cin], W[cout], None, dy[:, cout], padding=1)
    return dx, dW
    # END SOLUTION

# %%
results["grouped_conv2d"] = ex.check_grouped_conv2d(grouped_conv2d_backward)

# %% [markdown]
# ## Where you stand

# %%
ex.summary(results)

# %% only=solutions
assert all(r.ok for r in results.values()), "a solution fails its check"

# %% [markdown] only=solutions
# ## What a wrong answer looks like
#
# Batch norm's backward without the mean term, a block whose backward forgets the shortcut,
# and a max-pool backward that sends the gradient to every tied maximum (it passes the gradient
# check, and the rule test catches it):

# %% only=solutions
def batchnorm_backward_no_mean_term(x, gamma, beta, dy, eps=1e-5):
    axes = (0, 2, 3)
    s = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - x.mean(axis=axes, keepdims=True)) * s
    dxhat = dy * gamma.reshape(1, -1, 1, 1)
    dx = s * (dxhat - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def basic_block_backward_no_shortcut(x, W1, gamma1, beta1, W2, gamma2, beta2, dy):
    dx, *param_grads = basic_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, dy)
    g = relu_backward(ex.basic_block(x, W1, gamma1, beta1, W2, gamma2, beta2), dy)
    return (dx - g, *param_grads)   # take the shortcut's share back out


wrong = ex.check_batchnorm(batchnorm_backward_no_mean_term)
print()
wrong = ex.check_basic_block(basic_block_backward_no_shortcut)
print()


def maxpool_backward_every_tie(x, dy, kernel_size=2, stride=2, padding=0):
    k, s, p = kernel_size, stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    dx_pad = np.zeros(x_pad.shape)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            window = x_pad[:, :, i * s:i * s + k, j * s:j * s + k]
            is_max = window == window.max(axis=(2, 3), keepdims=True)      # every tied maximum
            dx_pad[:, :, i * s:i * s + k, j * s:j * s + k] += is_max * dy[:, :, i:i + 1, j:j + 1]
    return dx_pad[:, :, p:p + x.shape[2], p:p + x.shape[3]]


wrong = ex.check_maxpool(maxpool_backward_every_tie)
