# Source of tutorials/13_bottlenecks_and_groups.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 13. Bottlenecks, v1 and v1.5, groups and ResNeXt, and why the identity must be reachable
#
# ResNet-50 and deeper are built from *bottleneck* blocks: a 1x1 convolution that reduces the
# channels, a 3x3 at the reduced width, and a 1x1 that restores them. ResNeXt splits that 3x3
# into many small independent convolutions, *groups*. This notebook takes each piece apart:
#
# 1. the 1x1 convolution is a matrix multiply at every pixel;
# 2. why the bottleneck reduces, then restores, the channels;
# 3. ResNet v1 and v1.5: where the stride sits, and what a stride-2 1x1 throws away;
# 4. grouped convolution: a block-diagonal weight matrix, its parameter count, cardinality, and
#    its backward (an exercise in notebook 7);
# 5. why a deeper net should contain the shallower one, and how the shortcut makes it so.
#
# No number in the text is typed in: the cells compute and print them.

# %%
import inspect

import numpy as np

from minires import check_module, nn
from minires.models import Bottleneck, BasicBlock
from minires.zoo import get_model
from minires.engine import conv as engine_conv
from minires.nn.conv import conv_forward

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The 1x1 convolution is a per-pixel matrix multiply
#
# With a $1 \times 1$ kernel a window is a single pixel's $C$ channel values, so the output at
# pixel $(p, q)$ is $W x[:, p, q]$ with $W$ the $(O, C)$ matrix `w[:, :, 0, 0]`: the same matrix
# multiply at every pixel, no neighbour involved. All pixels at once, it is one product of
# $W$ $(O \times C)$ with the image as a $(C \times HW)$ matrix, and there is nothing to copy: the
# image already *is* the im2col matrix. The library's fast path does exactly that
# (`minires/engine/conv.py:pointwise_columns`):

# %%
print(inspect.getsource(engine_conv.pointwise_columns))
x = rng.standard_normal((2, 8, 5, 5))
w = rng.standard_normal((16, 8, 1, 1))
y_conv = conv_forward(x, w, None, (1, 1), (0, 0))[0]
y_matmul = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x)   # W @ x[n, :, p, q] at every pixel
print("max |conv_forward - per-pixel matmul| =", np.abs(y_conv - y_matmul).max())

# %% [markdown]
# ## 2. Why the bottleneck reduces, then restores
#
# A 3x3 convolution from $C$ to $C$ channels has $9 C^2$ weights and costs $9 C^2$ multiply-adds
# per pixel: at 256 channels, too many to stack dozens of. The bottleneck does the expensive
# spatial mixing at a quarter of the width: 1x1 from 256 down to 64, 3x3 at 64, 1x1 back up
# to 256. The channel count must come back up because the shortcut adds the block's input,
# 256 channels, to its output. Counted from the blocks themselves:

# %% [markdown]
# ResNet-50's bottleneck blocks, drawn from `minires.models.resnet50`'s modules with their
# output shapes (`draw_bottleneck_block`).

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_bottleneck_block();

# %%
def conv_weights(module):
    """How many convolution weights a module holds, and the list per convolution."""
    sizes = [(n, p.data.size) for n, p in module.named_parameters() if p.data.ndim == 4]
    return sum(s for _, s in sizes), sizes


basic = BasicBlock(256, 256)
bottleneck = Bottleneck(256, 64)   # planes 64, output 64 * expansion 4 = 256
for name, block in (("basic block, two 3x3 at 256", basic), ("bottleneck 256-64-64-256", bottleneck)):
    total, sizes = conv_weights(block)
    print(f"{name:30} {total:>10,} conv weights: " + ", ".join(f"{n} {s:,}" for n, s in sizes))
ratio = conv_weights(basic)[0] / conv_weights(bottleneck)[0]
print(f"the bottleneck has {ratio:.1f} times fewer; per pixel, multiply-adds are in the same ratio")

# %% [markdown]
# (Notebook 6 compares the two blocks inside ResNet-34 and ResNet-50.) The 1x1s are cheap,
# $C_{in} C_{out}$ per pixel, and they are where the channels are mixed; the 3x3 mixes
# neighbouring pixels, at the low width.
#
# ## 3. v1 and v1.5: where the stride sits
#
# Where a stage halves the image, one of the bottleneck's convolutions has stride 2. The paper
# (ResNet "v1") put it on the first 1x1; torchvision moved it to the 3x3 ("v1.5"), which is
# slightly more accurate. Why: a 1x1 convolution of stride 2 computes its outputs from the
# pixels at even rows and even columns only; every other pixel of the input never reaches the
# block's main path. A 3x3 of stride 2 has windows that cover every pixel. The
# gradient shows which input pixels an output depends on: send ones back through each
# convolution and count the pixels that receive something.

# %% [markdown]
# Which convolution of each stage's first block has stride 2, read from `resnet50_v1` and
# `resnet50` (`draw_stride_placement`).

# %%
diagrams.draw_stride_placement();

# %%
def pixels_seen(conv, size=8):
    """The fraction of input pixels that reach at least one output of ``conv``."""
    x = rng.standard_normal((1, conv.in_channels, size, size)).astype(np.float32)
    y = conv(x)
    dx = conv.backward(np.ones_like(y))
    return np.mean(np.any(dx != 0, axis=1))


one_by_one = nn.Conv2d(16, 16, 1, stride=2, bias=False)
three_by_three = nn.Conv2d(16, 16, 3, stride=2, padding=1, bias=False)
print(f"1x1, stride 2 (v1):   reads {pixels_seen(one_by_one):.0%} of the pixels")
print(f"3x3, stride 2 (v1.5): reads {pixels_seen(three_by_three):.0%} of the pixels")
for name in ("resnet50_v1", "resnet50"):
    block = get_model(name).layer2[0]
    print(f"{name:12} first block of stage 2: conv1 stride {block.conv1.stride}, conv2 stride {block.conv2.stride}")

# %% [markdown]
# Both variants are in the library: `resnet50` (v1.5, torchvision's) and `resnet50_v1`, and
# `Bottleneck(..., stride_in_1x1=True)` for the paper's block. Their parameters are the same;
# only where the stride sits differs, and with it the multiply-adds (v1 runs its 3x3 on the
# already halved image).
#
# ## 4. Grouped convolution and ResNeXt
#
# With `groups` $G$, a convolution splits its $C$ input channels into $G$ groups of $C/G$ and
# its $O$ filters likewise; filter group $g$ sees only input group $g$. Each filter has $C/G$
# channels instead of $C$, so the weights are divided by $G$:

# %% [markdown]
# Which input channels each output channel sees, measured on ResNeXt-50's grouped 3x3
# convolution and ResNet-50's dense one (`draw_grouped_conv`).

# %%
diagrams.draw_grouped_conv();

# %%
for groups in (1, 32):
    conv = nn.Conv2d(128, 128, 3, padding=1, groups=groups, bias=False)
    print(f"3x3 conv, 128 -> 128 channels, {groups:>2} group(s): weight {conv.weight.data.shape}, "
          f"{conv.weight.data.size:,} weights")

# %% [markdown]
# As a matrix, $W_{\mathrm{row}}$ of notebook 1 (one row per filter, one column per input
# channel and kernel offset) becomes **block-diagonal**: the weights that would connect a filter
# to the channels of other groups are zero, so they are not stored, and one big product becomes
# $G$ small ones. The library's `conv_forward` does them in one call, `xp.matmul` over the
# leading axis $G$ (notebook 1 printed it). Check: a grouped convolution equals an ordinary one
# whose weight is the block-diagonal matrix, zeros outside the blocks.

# %%
C, O, G = 8, 8, 4
w_grouped = rng.standard_normal((O, C // G, 3, 3))
w_dense = np.zeros((O, C, 3, 3))
for g in range(G):                      # filter group g sees input channels g*C/G ... (g+1)*C/G - 1
    rows, cols = slice(g * O // G, (g + 1) * O // G), slice(g * C // G, (g + 1) * C // G)
    w_dense[rows, cols] = w_grouped[rows]
x = rng.standard_normal((2, C, 6, 6))
y_grouped = conv_forward(x, w_grouped, None, (1, 1), (1, 1), groups=G)[0]
y_dense = conv_forward(x, w_dense, None, (1, 1), (1, 1))[0]
print("max |grouped - dense block-diagonal| =", np.abs(y_grouped - y_dense).max())
print("which (filter, input channel) pairs are connected (1) in W_row, kernel offsets summed:")
print((np.abs(w_dense).sum(axis=(2, 3)) > 0).astype(int))

# %% [markdown]
# **Cardinality** is ResNeXt's name for $G$: the number of parallel paths in a block. The
# ResNeXt paper's argument is that, at the same cost, more paths of smaller width do better
# than fewer wide ones. `resnext50_32x4d` is ResNet-50 with, in its bottlenecks, a 3x3 of 32
# groups of 4 channels each in the first stage (twice as many channels per group at each later
# stage); to pay for so many groups, its bottleneck is wider than ResNet-50's (compare the
# channels printed):

# %%
for name in ("resnet50", "resnext50_32x4d"):
    model = get_model(name)
    block = model.layer1[0]
    print(f"{name:16} {model.num_parameters():>11,} parameters; first block: 3x3 {block.conv2.in_channels} -> "
          f"{block.conv2.out_channels} channels in {block.conv2.groups} group(s) of "
          f"{block.conv2.in_channels // block.conv2.groups}")

# %% [markdown]
# ### Each group is an ordinary convolution
#
# Another way to see the block-diagonal matrix: the grouped convolution is $G$ ordinary ones,
# each of its own slice of the input channels with its own slice of the filters, their outputs
# side by side along the channels.

# %%
def grouped_by_slices(x, w, groups):
    """A grouped 3x3 convolution (stride 1, padding 1) as `groups` ordinary ones, concatenated."""
    C, O = x.shape[1], w.shape[0]
    outs = [conv_forward(x[:, g * C // groups:(g + 1) * C // groups], w[g * O // groups:(g + 1) * O // groups],
                         None, (1, 1), (1, 1))[0] for g in range(groups)]
    return np.concatenate(outs, axis=1)


print("max |grouped - G ordinary convolutions| =", np.abs(y_grouped - grouped_by_slices(x, w_grouped, G)).max())
print(check_module(nn.Conv2d(C, O, 3, padding=1, groups=G), x))

# %% [markdown]
# The backward follows the same slices, and it is **exercise 8 of notebook 7**
# ([07_gradcheck_exercises.ipynb](07_gradcheck_exercises.ipynb)): write
# `grouped_conv2d_backward(x, W, dy, groups)` with your ordinary convolution backward, and
# `ex.check_grouped_conv2d` checks it (a slice off by one group is recognised). The library's
# grouped backward, checked above, does all the groups at once: in its textbook form,
# `minires/nn/conv.py:conv_backward`, one `xp.matmul` over the leading axis $G$.
#
# ## 5. Why the identity must be reachable
#
# Dive into Deep Learning (its ResNet section) puts the argument in terms of *function classes*: the
# set $\mathcal{F}$ of all functions a network can compute as its weights vary. Training finds
# (at best) the function in $\mathcal{F}$ closest to the truth. Make the network bigger, and you
# get a class $\mathcal{F}'$; if $\mathcal{F} \subseteq \mathcal{F}'$ (nested classes), the best of
# $\mathcal{F}'$ is at least as good as the best of $\mathcal{F}$. If the classes are *not* nested, a
# bigger network can be worse: nothing guarantees that it can still compute what the smaller one
# did.
#
# A deeper net contains the shallower one when its extra blocks can be the identity. For a
# plain block that means weights that make conv-BN-ReLU-conv-BN the identity map: possible in
# principle, and hard for SGD to find. For a residual block, $\mathrm{relu}(F(x) + x)$, it means
# $F = 0$, which is simply the last batch norm's scale $\gamma = 0$ (what
# `zero_init_residual=True` starts from). Check, on a non-negative input (the output of the
# previous block's ReLU):

# %%
x = np.maximum(rng.standard_normal((2, 16, 6, 6)), 0).astype(np.float32)
for residual in (True, False):
    block = BasicBlock(16, 16, residual=residual).eval()
    block.bn2.weight.data[...] = 0              # the main path F outputs zero (its bias beta is 0 too)
    out = block(x)
    print(f"{'residual' if residual else 'plain':8} block with bn2's gamma = 0: max |out - x| = "
          f"{np.abs(out - x).max():.3g}")

# %% [markdown]
# The residual block with $F = 0$ *is* the identity, so adding it to a network keeps every
# function the network could compute: the classes are nested, and depth can only add. The plain
# block with the same weights outputs zeros, and no simple setting of its weights gives the
# identity. Notebook 9 shows what this means in training: plain nets get worse with depth;
# residual ones do not.
#
# ## Summary
#
# * A 1x1 convolution is one matrix multiply at every pixel; the bottleneck uses two of them to
#   do its 3x3 at a quarter of the width, and to come back to the width the shortcut adds.
# * v1 strides the first 1x1, which then reads only the pixels at even rows and columns; v1.5
#   strides the 3x3, whose windows cover every pixel.
# * A grouped convolution's weight matrix is block-diagonal: $G$ small products instead of one
#   big one, and $G$ times fewer weights; ResNeXt's cardinality is $G$. Its backward, group by
#   group, is exercise 8 of notebook 7.
# * Nested function classes: a residual block can be the identity ($\gamma = 0$), so a deeper
#   ResNet contains the shallower one.
#
# **Back to:** [the list of notebooks](README.md).
