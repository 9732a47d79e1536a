# Source of tutorials/05_residual_block.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 5. The residual block
#
# He et al. (2015) found that simply stacking more layers made networks *worse*, even on the
# training set: deep plain networks are hard to optimise. Their fix is the residual block: the
# layers learn a correction $F(x)$ that is **added** to the block's input,
#
# $$ \text{out} = \mathrm{ReLU}\big(F(x) + \mathrm{shortcut}(x)\big), \qquad
#    F = \mathrm{BN} \circ \mathrm{conv} \circ \mathrm{ReLU} \circ \mathrm{BN} \circ \mathrm{conv} , $$
#
# where the shortcut is the identity, or a $1 \times 1$ convolution with BN when the shape
# changes (a "projection").
#
# In this notebook you will
#
# 1. write the basic block from `minires.nn` layers, with a backward of four lines in which
#    the gradient splits into the two paths and is summed;
# 2. gradient-check it, and watch a forgotten shortcut gradient get caught;
# 3. check it against the library's `minires.models.BasicBlock`, forward and backward;
# 4. measure gradient norms layer by layer in a deep plain stack and a deep residual stack at
#    initialisation, and see what the shortcut does for them.

# %%
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from minires import check_module, nn

rng = np.random.default_rng(0)
nn.manual_seed(0)

# %% [markdown]
# ## The block
#
# The backward is the teaching moment. $x$ is used twice (by the main path and by the
# shortcut), and the multivariable chain rule says that the gradient of a variable used twice
# is the **sum** of the gradients through each use. Reading the forward backwards:
#
# 1. through the final ReLU: $g = d\text{out} \cdot [\text{out} > 0]$;
# 2. the addition copies $g$ to both of its inputs;
# 3. main path: $g_{\text{main}} = F$'s backward of $g$ (bn2, conv2, ReLU, bn1, conv1, in reverse);
#    shortcut: $g_{\text{short}} = g$ for the identity, or the projection's backward of $g$;
# 4. $dx = g_{\text{main}} + g_{\text{short}}$.
#
# An empty `nn.Sequential()` is the identity (its forward returns $x$, its backward returns
# $g$), so both shortcuts have the same code. (`batch_norm=False` is only for the experiment at
# the end of this notebook; the placeholder norm is an empty `Sequential` too.)

# %% [markdown]
# ResNet-34's basic blocks drawn from `minires.models.resnet34`'s own modules, in the order their
# forward calls them, with the output shapes of a forward on a 224 x 224 image (`draw_basic_block`):
# an identity block, and the first block of a stage, whose shortcut is a projection.

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_basic_block();

# %%
class BasicBlock(nn.Module):
    """out = relu(main(x) + shortcut(x)). x (N, c_in, H, W) -> (N, c_out, H/stride, W/stride)."""

    def __init__(self, c_in, c_out, stride=1, batch_norm=True):
        def norm(c):
            return nn.BatchNorm2d(c) if batch_norm else nn.Sequential()

        bias = not batch_norm  # a conv bias before BN is useless: BN subtracts the mean anyway
        self.main = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias), norm(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias), norm(c_out))
        if stride == 1 and c_in == c_out:
            self.shortcut = nn.Sequential()  # identity
        else:                                # projection: 1x1 conv with the same stride, so the shapes match
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=bias), norm(c_out))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.main(x) + self.shortcut(x))

    def backward(self, grad_out):
        g = self.relu.backward(grad_out)     # 1. back through the final ReLU
        g_main = self.main.backward(g)       # 2. the main path: bn2, conv2, relu, bn1, conv1, in reverse
        g_short = self.shortcut.backward(g)  # 3. the shortcut: the identity passes g on unchanged
        return g_main + g_short              # 4. x fed both paths: its gradient is the sum

# %%
block = BasicBlock(4, 4)
x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
print(block)
print("output shape:", block(x).shape, " parameters:", block.num_parameters())

# %% [markdown]
# ## Gradient checks
#
# Both kinds of block, in training mode, on a float64 copy (checking 50 random entries of each
# tensor, to be quick):

# %%
print(check_module(BasicBlock(4, 4), rng.standard_normal((2, 4, 6, 6)), max_entries=50))
print(check_module(BasicBlock(4, 8, stride=2), rng.standard_normal((2, 4, 6, 6)), max_entries=50))

# %% [markdown]
# Now forget the shortcut's gradient, the most common bug in a hand-written residual block:

# %%
class ForgetfulBlock(BasicBlock):
    def backward(self, grad_out):
        g = self.relu.backward(grad_out)
        return self.main.backward(g)  # the shortcut's share is missing


print(check_module(ForgetfulBlock(4, 4), rng.standard_normal((2, 4, 6, 6)), max_entries=50))

# %% [markdown]
# Every parameter's gradient is still right (they only see the main path), and the input's
# gradient is wrong. A check of the parameters alone would have missed it; in a network, the
# blocks *below* this one would then all receive wrong gradients.
#
# ## The library's block
#
# `minires.models.BasicBlock`, the block the ResNets of notebooks 6 to 9 are built from, is this
# block under other names. Build one of each kind with the same shapes, copy our block's
# parameters and batch-norm statistics into it, and run both on the same input and the same
# upstream gradient, in training mode. The two state dicts hold the same layers in the same
# order, so their entries pair one for one (the pairs are printed for the projection block):

# %% [markdown]
# The paper's CIFAR nets offer two shortcuts where the shape changes: option A pads the new
# channels with zeros and has no parameters, option B is a projection. Each drawn as the matrix from
# input to output channels, measured on `resnet20`'s shortcut with one-hot inputs
# (`draw_shortcut_options`):

# %%
diagrams.draw_shortcut_options();

# %%
import minires.models
from minires.models import projection

rng_lib = np.random.default_rng(1)   # its own generator: the cells below draw what they drew before
for c_in, c_out, stride in [(4, 4, 1), (4, 8, 2)]:
    ours = BasicBlock(c_in, c_out, stride)
    downsample = None if stride == 1 and c_in == c_out else projection(c_in, c_out, stride)
    library = minires.models.BasicBlock(c_in, c_out, stride, downsample=downsample)
    names = dict(zip(ours.state_dict(), library.state_dict()))     # our key -> the library's key
    library.load_state_dict({names[k]: v for k, v in ours.state_dict().items()})
    if downsample is not None:
        layers = {k.rsplit(".", 1)[0]: v.rsplit(".", 1)[0] for k, v in names.items()}
        print("our layer -> the library's:", ", ".join(f"{k} -> {v}" for k, v in layers.items()))

    x = rng_lib.standard_normal((2, c_in, 6, 6)).astype(np.float32)
    y_ours, y_library = ours(x.copy()), library(x.copy())
    dy = rng_lib.standard_normal(y_ours.shape).astype(np.float32)
    ours.zero_grad()
    library.zero_grad()
    dx_ours, dx_library = ours.backward(dy.copy()), library.backward(dy.copy())
    theirs = dict(library.named_parameters())
    diff = {"output": np.abs(y_ours - y_library).max(), "input gradient": np.abs(dx_ours - dx_library).max(),
            "parameter gradients": max(np.abs(p.grad - theirs[names[n]].grad).max()
                                       for n, p in ours.named_parameters())}
    print(f"{c_in} -> {c_out} channels, stride {stride}: largest difference, "
          + ", ".join(f"{k} {float(v):.1e}" for k, v in diff.items()))
    assert max(diff.values()) < 1e-5

# %% [markdown]
# The printed differences are the largest over every entry of the output and of every gradient:
# the two blocks compute the same thing, and the library's backward,
# `minires/models/blocks.py:BasicBlock.backward`, is ours with the `Sequential` written out layer
# by layer. What the library's version adds is fit, not arithmetic:
#
# * **torchvision's names** (`conv1`, `bn1`, `conv2`, `bn2`, `downsample`), so its state-dict keys
#   are torchvision's and published weights load name for name (notebook 11);
# * **the shortcut handed in** (`downsample`, None for the identity), so a network chooses it: a
#   projection in the ImageNet ResNets (notebook 6), the paper's parameter-free option A
#   (`ShortcutA`) in the CIFAR ones;
# * **`residual=False`**, which drops the shortcut: the plain twin of notebook 9's degradation
#   experiment;
# * **memory**: on its fast path, batch norm, ReLU and the sum write over arrays no layer kept
#   for its backward (the module docstring of `minires/models/blocks.py` gives the rule).
#
# ## Gradients in deep stacks at initialisation
#
# Why does the shortcut help deep networks train? Look at the gradient that reaches each
# layer. For a stack of plain layers $x_{l+1} = f_l(x_l)$, the chain rule multiplies one
# Jacobian per layer:
#
# $$ dx_0 = J_1^\top J_2^\top \cdots J_L^\top \, dx_L , $$
#
# and a product of $L$ factors tends to shrink or grow geometrically with $L$. For residual
# blocks $x_{l+1} = x_l + F_l(x_l)$ (ignoring the final ReLU), each step is
# $dx_l = dx_{l+1} + J_{F_l}^\top dx_{l+1}$: the first term carries the gradient from the top
# to every block unchanged, whatever the main paths do.
#
# The experiment: two stacks of **30 convolutions** each ($3 \times 3$, 8 channels, inputs of
# $8 \times 8$, batch 8), freshly initialised (PyTorch's default):
#
# * **plain**: 30 times conv-BN-ReLU;
# * **residual**: 15 `BasicBlock`s (2 convolutions each),
#
# and the same two without batch norm. Send a random gradient back from the output, and
# record the norm of each convolution's weight gradient, from the first layer (next to the
# input) to the last.

# %%
def plain_stack(depth, c, batch_norm=True):
    layers = []
    for _ in range(depth):
        layers += [nn.Conv2d(c, c, 3, padding=1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(c)] if batch_norm else []
        layers += [nn.ReLU()]
    return nn.Sequential(*layers)


def residual_stack(depth, c, batch_norm=True):
    return nn.Sequential(*[BasicBlock(c, c, batch_norm=batch_norm) for _ in range(depth // 2)])


def weight_gradient_norms(net, x, dy):
    """One forward and backward; the norm of every conv's weight gradient, in order from the input."""
    net(x)
    net.zero_grad()
    net.backward(dy)
    return [float(np.linalg.norm(m.weight.grad)) for m in net.modules() if isinstance(m, nn.Conv2d)]


DEPTH, C = 30, 8
x = rng.standard_normal((8, C, 8, 8)).astype(np.float32)
dy = rng.standard_normal((8, C, 8, 8)).astype(np.float32)  # the gradient arriving from above
nn.manual_seed(1)
norms = {(kind, bn): weight_gradient_norms(make(DEPTH, C, batch_norm=bn), x, dy)
         for bn in (False, True) for kind, make in (("plain", plain_stack), ("residual", residual_stack))}

fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharex=True)
for ax, bn in zip(axes, (False, True)):
    for kind in ("plain", "residual"):
        ax.semilogy(range(1, DEPTH + 1), norms[kind, bn], "o-", ms=3, label=kind)
    ax.set_title(f"conv-{'BN-' if bn else ''}ReLU, {DEPTH} convolutions")
    ax.set_xlabel("convolution (1 = next to the input)")
    ax.legend()
axes[0].set_ylabel("norm of the weight gradient")
plt.tight_layout()
plt.show()

for (kind, bn), n in norms.items():
    print(f"{kind:>8}, {'with' if bn else 'without'} BN: first layer / last layer = {n[0] / n[-1]:.1e}")

# %% [markdown]
# What the plots show:
#
# * **Without batch norm** the plain stack's gradients **vanish**: each layer passes back only a
#   fraction of what it receives (PyTorch's default initialisation draws weights with variance
#   $1/(3\,\mathrm{fan\_in})$ where a ReLU layer needs $2/\mathrm{fan\_in}$ to keep the scale, so each
#   layer shrinks signals by about $\sqrt{1/6} \approx 0.4$), and after 30 layers the first
#   convolution gets a minute fraction of the last one's gradient (the first line printed under
#   the plots): it would not learn at all. In the residual stack every convolution gets a
#   gradient of about the same size, because every block's input gradient contains the one from
#   above, unchanged.
# * **With batch norm** the plain stack does not vanish; its gradients *grow* towards the input
#   (by the factor printed for it under the plots). Batch norm keeps the forward signals at a
#   healthy scale, but the backward is still a product of 30 Jacobians, and it drifts geometrically; this
#   explosion at initialisation is a known property of deep batch-normalised plain networks
#   (Yang et al., 2019). The residual stack stays within a small factor from end to end.
#
# Either way, the shortcut turns a product of many factors into a sum of paths, and
# gradients of a sensible size reach every layer. (The ReLU after the addition keeps the
# shortcut from being a pure identity; He et al.'s follow-up paper, *Identity Mappings in Deep
# Residual Networks*, 2016, moves it into the main path for exactly this reason.)
#
# ## Summary
#
# * The basic block's backward: through the final ReLU, then the gradient **splits** (main path
#   and shortcut) and the two input gradients are **summed**, because $x$ feeds both.
# * A forgotten shortcut gradient leaves every parameter gradient right and the input gradient
#   wrong: check the input too.
# * In a deep plain stack gradients vanish or explode geometrically with depth; the shortcut's
#   identity path carries them to every layer.
#
# **Next:** the exercises, [07_gradcheck_exercises.ipynb](07_gradcheck_exercises.ipynb), where
# you write these backwards yourself.
