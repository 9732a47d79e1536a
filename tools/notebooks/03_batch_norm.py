# Source of tutorials/03_batch_norm.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 3. Batch normalisation
#
# Batch norm (Ioffe & Szegedy, 2015) follows every convolution in a ResNet. It rescales each
# channel to mean 0 and variance 1 over the batch, then applies a learned scale $\gamma$ and
# shift $\beta$. Its forward is four lines; its backward is where most hand-written
# implementations go wrong, because the batch's mean and variance depend on the input too.
#
# In this notebook you will
#
# 1. compute the forward in training mode (batch statistics) and in evaluation mode (running
#    statistics), and check them against `minires.nn.BatchNorm2d`;
# 2. follow the running statistics: a moving average with `momentum`, storing the *unbiased*
#    variance, exactly as PyTorch does;
# 3. derive the backward, term by term, and see what each term is for;
# 4. see why a gradient check needs a *random* upstream gradient: with $L = \sum y$ the true
#    input gradient is exactly zero, and broken backwards pass.

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from minires import check_function, check_module, nn

rng = np.random.default_rng(0)

# %% [markdown]
# ## Forward, training mode
#
# For each channel $c$, over the $M = N \cdot H \cdot W$ values of that channel in the batch:
#
# $$ \mu = \frac{1}{M} \sum_k x_k, \qquad \sigma^2 = \frac{1}{M} \sum_k (x_k - \mu)^2, \qquad
#    \hat x_k = \frac{x_k - \mu}{\sqrt{\sigma^2 + \varepsilon}}, \qquad y_k = \gamma \hat x_k + \beta . $$
#
# $\varepsilon = 10^{-5}$ keeps the division safe. Statistics are *per channel* (one $\mu$ and
# $\sigma^2$ per channel, shared by every pixel of every image), which is what makes it right for
# convolutions: a filter's response is treated alike wherever it is in the image.
#
# A batch whose three channels have very different offsets and spreads:

# %% [markdown]
# Each channel's values before and after normalisation, from `batchnorm_forward` with the
# layer's own batch mean and variance (`draw_batch_norm`).

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_batch_norm();

# %%
N, C, H, W = 8, 3, 4, 4
offsets, spreads = np.array([3.0, -1.0, 0.5]), np.array([2.0, 0.5, 1.0])
x = rng.standard_normal((N, C, H, W)) * spreads.reshape(1, C, 1, 1) + offsets.reshape(1, C, 1, 1)

bn = nn.BatchNorm2d(C).to(dtype=np.float64)  # gamma = weight = 1, beta = bias = 0 at the start
y = bn(x)
print("input  mean per channel:", x.mean(axis=(0, 2, 3)).round(3), " std:", x.std(axis=(0, 2, 3)).round(3))
print("output mean per channel:", y.mean(axis=(0, 2, 3)).round(3), " std:", y.std(axis=(0, 2, 3)).round(3))

# %% [markdown]
# The same by hand; `keepdims=True` keeps the statistics as $(1, C, 1, 1)$ so that they broadcast
# over the batch and the pixels:

# %%
def batchnorm_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)                  # (1, C, 1, 1)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)   # biased: divided by M
    xhat = (x - mean) / np.sqrt(var + eps)
    return gamma.reshape(1, -1, 1, 1) * xhat + beta.reshape(1, -1, 1, 1)


gamma, beta = np.array([1.5, 0.5, 1.0]), np.array([0.0, 1.0, -2.0])
bn.weight.data[...], bn.bias.data[...] = gamma, beta
print("max |minires - by hand| =", np.abs(bn(x) - batchnorm_train(x, gamma, beta)).max())

# %% [markdown]
# ## Running statistics and evaluation mode
#
# At test time there may be a single image, and a prediction should not depend on which other
# images share its batch. So during training the layer also keeps *running* estimates of each
# channel's mean and variance, and evaluation mode (`bn.eval()`) normalises with those. After
# every training batch (PyTorch's rule, which minires follows exactly):
#
# $$ \mathrm{running\_mean} \leftarrow (1 - m)\, \mathrm{running\_mean} + m\, \mu, \qquad
#    \mathrm{running\_var} \leftarrow (1 - m)\, \mathrm{running\_var} + m\, \frac{M}{M - 1} \sigma^2 , $$
#
# with `momentum` $m = 0.1$ (the weight of the *new* batch: the opposite of an optimiser's
# momentum). Note the factor $\frac{M}{M-1}$: the batch is normalised with the biased variance
# $\sigma^2$ (it describes *this* batch exactly), but the running estimate stores the **unbiased**
# one, an estimate of the variance of the whole data set. Starting from mean 0 and variance 1:

# %%
bn = nn.BatchNorm2d(C).to(dtype=np.float64)
M = N * H * W
bn(x)                                            # one training step
mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
print("running_mean:", bn.running_mean.round(5), " expected:", (0.9 * 0 + 0.1 * mu).round(5))
print("running_var: ", bn.running_var.round(5), " expected:", (0.9 * 1 + 0.1 * var * M / (M - 1)).round(5))

# %% [markdown]
# Why unbiased? The mean of a sample is closer to the sample's own points than the true mean
# is, so dividing by $M$ underestimates the spread, on average by the factor $\frac{M-1}{M}$.
# With tiny samples of $M = 4$ values from a distribution of variance 1:

# %%
samples = rng.standard_normal((100_000, 4))
print("average biased variance   (/M):    ", samples.var(axis=1).mean().round(3), " expected (M-1)/M = 0.75")
print("average unbiased variance (/(M-1)):", samples.var(axis=1, ddof=1).mean().round(3), " expected 1")

# %% [markdown]
# (In a ResNet $M = N H W$ is in the thousands and the factor is close to 1; it matters for
# matching PyTorch to the last digit, and for small batches.)
#
# The running values are exponential moving averages: batch $t - k$ has weight $m (1 - m)^k$, so
# they forget the past over about $1/m = 10$ batches. Feed 60 batches of the same distribution
# (channel 0: mean 3, standard deviation 2) and watch them settle:

# %%
bn = nn.BatchNorm2d(C).to(dtype=np.float64)
history = []
for step in range(60):
    batch = rng.standard_normal((N, C, H, W)) * spreads.reshape(1, C, 1, 1) + offsets.reshape(1, C, 1, 1)
    bn(batch)
    history.append((bn.running_mean[0], bn.running_var[0]))
history = np.array(history)

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(history[:, 0], label="running_mean, channel 0")
ax.plot(history[:, 1], label="running_var, channel 0")
ax.axhline(3.0, ls="--", c="C0", lw=1)
ax.axhline(4.0, ls="--", c="C1", lw=1)
ax.set_xlabel("training batches")
ax.legend()
ax.set_title("running statistics approach the true mean 3 and variance 4 (dashed)")
plt.show()

# %% [markdown]
# In evaluation mode the layer uses these estimates, and each image's output stops depending
# on the rest of the batch. Check it: change images 1 to 7 and look at image 0's output.

# %%
other = x.copy()
other[1:] = rng.standard_normal(other[1:].shape) * 5  # a very different rest of the batch
for mode in ("train", "eval"):
    bn.train(mode == "train")
    changed = np.abs(bn(x)[0] - bn(other)[0]).max()
    print(f"{mode:>5} mode: image 0's output moved by {changed:.3f} when the other images changed")

# %% [markdown]
# (Each training-mode call above also nudged the running statistics: `bn(...)` in training mode
# is a training step for them.)
#
# ## Backward
#
# Per channel again, with upstream gradient $dy_k = \partial L / \partial y_k$. The two
# parameters are easy, each summing over the $M$ places it was used:
#
# $$ d\beta = \sum_k dy_k, \qquad d\gamma = \sum_k dy_k \, \hat x_k, \qquad d\hat x_k = \gamma \, dy_k . $$
#
# The input is harder: $x_j$ reaches $\hat x_k$ for **every** $k$, through $\mu$ and $\sigma^2$.
# Write $s = (\sigma^2 + \varepsilon)^{-1/2}$, so $\hat x_k = (x_k - \mu) s$, and differentiate:
#
# * directly: $\partial (x_k - \mu) / \partial x_j$ contributes $s\,\delta_{kj}$;
# * through the mean, $\partial \mu / \partial x_j = 1/M$: contributes $-s / M$;
# * through the variance, $\partial \sigma^2 / \partial x_j = \frac{2}{M}(x_j - \mu)$ (the other part
#   vanishes because $\sum_k (x_k - \mu) = 0$) and $\partial s / \partial \sigma^2 = -\frac12 s^3$:
#   contributes $-(x_k - \mu)\, s^3 (x_j - \mu) / M = -\frac{s}{M} \hat x_k \hat x_j$.
#
# Summing over $k$ with the weights $d\hat x_k$:
#
# $$ dx_j = \sum_k d\hat x_k \, \frac{\partial \hat x_k}{\partial x_j}
#         = s \Big( d\hat x_j \;-\; \underbrace{\tfrac{1}{M} \textstyle\sum_k d\hat x_k}_{\text{mean term}}
#           \;-\; \hat x_j \underbrace{\tfrac{1}{M} \textstyle\sum_k d\hat x_k \hat x_k}_{\text{variance term}} \Big) . $$
#
# In words: $dx$ is $s \, d\hat x$ with its component along the constant direction and its
# component along $\hat x$ removed. That makes sense: shifting all of a channel's inputs by
# the same amount, or stretching them about their mean, changes $\mu$ or $\sigma$ and leaves
# $\hat x$ exactly as it was, so the gradient can have no component in those two directions.

# %%
def batchnorm_backward(x, gamma, dy, eps=1e-5, mean_term=True, variance_term=True):
    """dy (N, C, H, W) -> dx, dgamma, dbeta (training mode). The flags drop a term, to see it matter."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    s = 1 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    xhat = (x - mean) * s
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    dbeta = dy.sum(axis=(0, 2, 3))
    dxhat = gamma.reshape(1, -1, 1, 1) * dy
    dx = dxhat
    if mean_term:
        dx = dx - dxhat.mean(axis=(0, 2, 3), keepdims=True)
    if variance_term:
        dx = dx - xhat * (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
    return s * dx, dgamma, dbeta


bn = nn.BatchNorm2d(C).to(dtype=np.float64)
bn.weight.data[...], bn.bias.data[...] = gamma, beta
y = bn(x)
dy = rng.standard_normal(y.shape)
bn.zero_grad()
dx_layer = bn.backward(dy)
dx, dgamma, dbeta = batchnorm_backward(x, gamma, dy)
print("dx:     max |minires - ours| =", np.abs(dx_layer - dx).max())
print("dgamma: max |minires - ours| =", np.abs(bn.weight.grad - dgamma).max())
print("dbeta:  max |minires - ours| =", np.abs(bn.bias.grad - dbeta).max())

# %% [markdown]
# The "no component along the constant direction and along $\hat x$" property can be checked:
# per channel, $\sum_j dx_j = 0$ and $\sum_j dx_j \hat x_j = 0$. The first holds for any
# $\varepsilon$; the second exactly only for $\varepsilon = 0$, because with $\varepsilon > 0$
# stretching the inputs changes $\hat x$ a little (try it with `eps=1e-5`).

# %%
eps = 0.0
dx0 = batchnorm_backward(x, gamma, dy, eps=eps)[0]
xhat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
print("per channel, sum of dx:       ", dx0.sum(axis=(0, 2, 3)))
print("per channel, sum of dx * xhat:", (dx0 * xhat).sum(axis=(0, 2, 3)))

# %% [markdown]
# ## Gradient checks, and why the upstream gradient must be random
#
# `check_module` checks the layer in both modes (in evaluation mode the statistics are
# constants and the layer is just an affine map of $x$):

# %%
print(check_module(nn.BatchNorm2d(C), x))
bn_eval = nn.BatchNorm2d(C)
bn_eval.running_mean[...], bn_eval.running_var[...] = offsets, spreads ** 2
print(check_module(bn_eval.eval(), x))

# %% [markdown]
# Now the trap. Many gradient checks use $L = \sum_k y_k$, i.e. an upstream gradient of all
# ones. For training-mode batch norm, $\sum_k \hat x_k = 0$ always, so
# $\sum_k y_k = \gamma \cdot 0 + M \beta$ **does not depend on $x$ at all**: the true $dx$ is exactly
# zero. Any backward that also returns zero for $dy = 1$ passes, for instance one that forgets
# the variance term (with $d\hat x$ constant, the mean term alone cancels it), or one that returns
# zeros outright. A numerical check with $dy = 1$ cannot tell them from the right one:

# %%
def numerical_dx(x, gamma, beta, dy, eps=1e-6):
    """Central differences of L(x) = sum(batchnorm(x) * dy), entry by entry."""
    x, grad = x.copy(), np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = np.sum(batchnorm_train(x, gamma, beta) * dy)
        x[i] = old - eps
        minus = np.sum(batchnorm_train(x, gamma, beta) * dy)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


candidates = {
    "right":                  lambda dy: batchnorm_backward(x, gamma, dy)[0],
    "forgot variance term":   lambda dy: batchnorm_backward(x, gamma, dy, variance_term=False)[0],
    "returns zeros":          lambda dy: np.zeros_like(x),
}
for upstream, dy in [("dy = 1 (L = sum y)", np.ones_like(x)), ("dy random", rng.standard_normal(x.shape))]:
    numeric = numerical_dx(x, gamma, beta, dy)
    print(f"{upstream}: largest numerical dx = {np.abs(numeric).max():.1e}")
    for name, backward in candidates.items():
        print(f"    {name:<22} max |dx - numerical| = {np.abs(backward(dy) - numeric).max():.1e}")

# %% [markdown]
# With $dy = 1$ all three agree with the numbers to within the noise of the finite differences
# (about $10^{-8}$ here); with a random $dy$ only the right one does. That is why `minires.check_module` and `check_function` always draw a random
# upstream gradient. Here is `check_function` on the two broken backwards:

# %%
def forward(x):
    return batchnorm_train(x, gamma, beta)


for flags in [dict(variance_term=False), dict(mean_term=False)]:
    def backward(g):
        return batchnorm_backward(x, gamma, g, **flags)[0]   # dx: the gradient of forward's input

    result = check_function(forward, backward, x, names=["x"])
    result.name = f"batchnorm_backward with {flags}"
    print(result, end="\n\n")

# %% [markdown]
# ## Summary
#
# * Training mode normalises each channel with the batch's mean and biased variance; evaluation
#   mode with running estimates, updated by `momentum` and storing the unbiased variance.
# * $d\beta = \sum dy$, $d\gamma = \sum dy\,\hat x$, and
#   $dx = s\,(d\hat x - \mathrm{mean}(d\hat x) - \hat x\,\mathrm{mean}(d\hat x\,\hat x))$: the two
#   subtracted terms are what the batch mean and the batch variance take back.
# * Gradient-check with a random upstream gradient: with $\sum y$ the true $dx$ of batch norm is
#   zero and broken backwards pass.
#
# **Next:** [04_relu_pool.ipynb](04_relu_pool.ipynb): ReLU and pooling, layers whose gradients are
# *routed* rather than computed.
