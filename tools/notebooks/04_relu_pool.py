# Source of tutorials/04_relu_pool.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 4. ReLU, max-pooling and global average pooling
#
# Three layers with no parameters. Their backward passes do not so much *compute* gradients as
# *route* them: ReLU lets the gradient through where the input was positive, max-pooling sends
# each window's gradient to the one input that won, and average pooling spreads it evenly.
#
# In this notebook you will write each forward and backward, check them against `minires.nn`
# and with `minires.check_module`, and meet the two places where these functions have no
# derivative (ReLU at 0, max-pooling at a tie), which a gradient check must stay away from.

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from minires import check_module, nn
from minires.nn.im2col import col2im, im2col

rng = np.random.default_rng(0)


def away_from_zero(shape, gap=0.05):
    """Random values at least `gap` away from 0: no input sits on ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + gap, x - gap)

# %% [markdown]
# ## ReLU
#
# $$ y = \max(x, 0), \qquad \frac{\partial y}{\partial x} = \begin{cases} 1 & x > 0 \\ 0 & x < 0 \end{cases}
#    \qquad\Longrightarrow\qquad dx = dy \cdot [x > 0] . $$
#
# The forward keeps the mask $[x > 0]$ for the backward.

# %%
def relu_forward(x):
    mask = x > 0
    return np.maximum(x, 0), mask


def relu_backward(dy, mask):
    return dy * mask


x = away_from_zero((2, 3, 4, 4))
relu = nn.ReLU()
y, mask = relu_forward(x)
dy = rng.standard_normal(y.shape)
print("forward  matches nn.ReLU:", np.array_equal(relu(x), y))
print("backward matches nn.ReLU:", np.array_equal(relu.backward(dy), relu_backward(dy, mask)))
print(check_module(nn.ReLU(), x))

# %% [markdown]
# At exactly $x = 0$ ReLU has no derivative: the slope is 0 on the left and 1 on the right.
# Frameworks use 0 there (so does minires: the mask is $x > 0$). A central difference
# straddles the kink and reports the average of the two slopes:

# %%
eps = 1e-6
for x0 in [-0.5, 0.0, 0.5]:
    numeric = (max(x0 + eps, 0) - max(x0 - eps, 0)) / (2 * eps)
    print(f"x = {x0:+.1f}: backward says {float(x0 > 0):.1f}, central difference says {numeric:.1f}")

# %% [markdown]
# Neither is wrong: the function is not differentiable there. But a gradient check on an input
# within $\varepsilon$ of 0 would report a failure that is not a bug. That is why the inputs of
# these checks are pushed away from 0 (`away_from_zero` above; minires's tests do the same). In
# a real network an activation that is exactly 0.0 before the ReLU is rare, and the choice
# of 0 or 1 there does not matter.
#
# ## Max-pooling
#
# Each window of the input gives its largest value. ResNet uses a $3 \times 3$ window, stride 2,
# padding 1 right after the first convolution. The windows are gathered with the same im2col as
# the convolution, now on $(N, C, H, W)$ as it is (so each channel is pooled separately), and
# the maximum is taken over the $K_H K_W$ window entries:

# %% [markdown]
# Where the gradient goes: `relu_backward` passes it where the input was positive, and
# `maxpool_backward` sends each window's gradient to its winner (`draw_relu_maxpool`).

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_relu_maxpool();

# %%
def maxpool_forward(x, k, stride, padding):
    """x (N, C, H, W) -> y (N, C, OH, OW), and the winner of each window (its index 0..k*k-1)."""
    N, C, H, W = x.shape
    col = im2col(x, k, k, stride, stride, padding, padding, pad_value=-np.inf)  # (N, k, k, C, OH, OW)
    col = col.reshape(N, k * k, C, *col.shape[-2:])
    winner = col.argmax(axis=1)                                   # (N, C, OH, OW): first maximum
    y = np.take_along_axis(col, winner[:, None], axis=1)[:, 0]    # the winners' values
    return y, winner


x = rng.standard_normal((2, 3, 7, 7))
y, winner = maxpool_forward(x, 3, 2, 1)
print("matches nn.MaxPool2d:", np.array_equal(y, nn.MaxPool2d(3, stride=2, padding=1)(x)), y.shape)

# %% [markdown]
# Note `pad_value=-np.inf`: the padding must never win. With zeros as padding, a window that
# hangs over the border of an all-negative feature map would return 0, a value that is not in
# the input at all:

# %%
negative = -np.abs(rng.standard_normal((1, 1, 4, 4))) - 1        # every value below -1
col_zero_padded = im2col(negative, 3, 3, 2, 2, 1, 1)              # pad_value=0.0, the default
print("padding as -inf:", maxpool_forward(negative, 3, 2, 1)[0][0, 0].round(2).tolist())
print("padding as 0:   ", col_zero_padded.reshape(1, 9, 1, 2, 2).max(axis=1)[0, 0].round(2).tolist())

# %% [markdown]
# ### Backward: the gradient goes to the winner
#
# $y$ is one of the window's inputs, so its gradient goes to that input and nowhere else:
# $dx_{\text{winner}} \mathrel{+}= dy$ for each window, zero for the losers. Windows overlap when the
# stride is smaller than the window, and an input that wins two windows gets both gradients:
# the same `col2im` that adds overlaps in the convolution's backward does it here.

# %%
def maxpool_backward(dy, winner, x_shape, k, stride, padding):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient to the position of its winner."""
    N, C, H, W = x_shape
    one_hot = np.arange(k * k).reshape(1, k * k, 1, 1, 1) == winner[:, None]  # (N, k*k, C, OH, OW)
    dcol = (one_hot * dy[:, None]).reshape(N, k, k, C, *dy.shape[-2:])
    return col2im(dcol, H, W, stride, stride, padding, padding)


pool = nn.MaxPool2d(3, stride=2, padding=1)
pool(x)
dy = rng.standard_normal(y.shape)
print("matches nn.MaxPool2d.backward:", np.array_equal(pool.backward(dy), maxpool_backward(dy, winner, x.shape, 3, 2, 1)))

# %% [markdown]
# A picture: a $6 \times 6$ map, $3 \times 3$ windows with stride 2 and padding 1 (9 windows),
# and $dy = 1$ everywhere, so $dx$ counts how many windows each input won. (The input holds the
# whole numbers -18 to 17 in random order: distinct values, so no window has a tie.)

# %%
x_map = (rng.permutation(36) - 18.0).reshape(1, 1, 6, 6)
y_map, win_map = maxpool_forward(x_map, 3, 2, 1)
dx_map = maxpool_backward(np.ones_like(y_map), win_map, x_map.shape, 3, 2, 1)

fig, axes = plt.subplots(1, 3, figsize=(12, 4), gridspec_kw={"width_ratios": [6, 3, 6]})
for ax, m, title in [(axes[0], x_map[0, 0], "input"), (axes[1], y_map[0, 0], "output (3x3, stride 2, pad 1)"),
                     (axes[2], dx_map[0, 0], "dx for dy = 1: windows won")]:
    ax.imshow(m, cmap="viridis")
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, f"{v:g}", ha="center", va="center", color="w")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Ties
#
# When two inputs of a window share the maximum, which one gets the gradient? `argmax` picks
# the first, and so does PyTorch. Again there is no derivative: nudge the first up and the
# output follows, nudge it down and the second takes over. A central difference reports half
# for each:

# %%
tie = np.array([[[[1.0, 1.0], [0.0, -1.0]]]])   # one 2x2 window, two equal maxima
y_tie, win_tie = maxpool_forward(tie, 2, 2, 0)
analytic = maxpool_backward(np.ones_like(y_tie), win_tie, tie.shape, 2, 2, 0)
numeric = np.zeros_like(tie)
for i in np.ndindex(tie.shape):
    plus, minus = tie.copy(), tie.copy()
    plus[i] += eps
    minus[i] -= eps
    numeric[i] = (maxpool_forward(plus, 2, 2, 0)[0].sum() - maxpool_forward(minus, 2, 2, 0)[0].sum()) / (2 * eps)
print("backward (first maximum wins):\n", analytic[0, 0])
print("central differences:\n", numeric[0, 0])

# %% [markdown]
# Both are valid *subgradients*; neither is a bug. Random real-valued inputs have no ties, so
# gradient checks use them (`rng.standard_normal`), and the check passes:

# %%
print(check_module(nn.MaxPool2d(3, stride=2, padding=1), rng.standard_normal((2, 3, 7, 7))))

# %% [markdown]
# ## Global average pooling
#
# At the end of a ResNet each feature map is averaged to one number, whatever the image size:
#
# $$ y[n, c] = \frac{1}{HW} \sum_{h, w} x[n, c, h, w], \qquad dx[n, c, h, w] = \frac{dy[n, c]}{HW} . $$
#
# Every input contributed $1/(HW)$ of the output, so each gets $1/(HW)$ of its gradient.

# %%
def avgpool_forward(x):
    return x.mean(axis=(2, 3), keepdims=True)       # (N, C, 1, 1)


def avgpool_backward(dy, x_shape):
    N, C, H, W = x_shape
    return np.broadcast_to(dy / (H * W), x_shape)   # the same share for every pixel


x = rng.standard_normal((2, 3, 5, 4))
gap = nn.AdaptiveAvgPool2d((1, 1))
dy = rng.standard_normal((2, 3, 1, 1))
gap(x)
print("forward  matches:", np.allclose(gap(x), avgpool_forward(x)))
print("backward matches:", np.allclose(gap.backward(dy), avgpool_backward(dy, x.shape)))
print(check_module(nn.AdaptiveAvgPool2d((1, 1)), x))

# %% [markdown]
# ## Everything together
#
# A network's backward is its layers' backwards in reverse order: `nn.Sequential.backward`
# does exactly that. A miniature classifier with every layer met so far, checked end to end
# along one random direction per tensor (`mode="direction"`, two forwards per tensor, so even
# large networks check quickly):

# %%
nn.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
    nn.MaxPool2d(3, stride=2, padding=1),
    nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(8, 5))
print(check_module(net, away_from_zero((4, 3, 8, 8)), mode="direction"))

# %% [markdown]
# ## Summary
#
# * ReLU: $dx = dy \cdot [x > 0]$. Max-pool: each window's $dy$ goes to its winner (overlaps add,
#   by col2im); padding is $-\infty$ so it never wins. Global average pool: $dx = dy / (HW)$.
# * ReLU at 0 and max-pool at a tie have no derivative; frameworks pick a subgradient, and
#   gradient checks keep their inputs away from those points.
#
# **Next:** [05_residual_block.ipynb](05_residual_block.ipynb): the block that gives ResNet its
# name, and why its shortcut keeps gradients alive.
