# Source of tutorials/06_building_resnet.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 6. Building ResNet-18, 34 and 50
#
# Table 1 of He et al. (2015) describes the ImageNet ResNets in a few lines: a stem, four
# stages of residual blocks that halve the image and double the channels, and a classifier.
# `minires.models` builds them exactly as torchvision does (same layer names, same shapes), so
# published weights load name for name (notebook 11).
#
# In this notebook you will
#
# 1. rebuild Table 1 *from the models themselves*: blocks per stage, the convolutions inside a
#    block, output sizes and the multiply-adds ("FLOPs" in the paper);
# 2. trace the shape of a 224x224 image stage by stage, by hand and with `minires.summary`;
# 3. find the blocks with a projection ("dashed") shortcut, and see why they need one;
# 4. count the parameters of a basic block and a bottleneck block on 256 channels: where the
#    bottleneck's saving comes from.
#
# Nothing here trains: one forward pass of one image per model, a few seconds in all.

# %%
import numpy as np

import minires
from minires import nn
from minires.models import BasicBlock, Bottleneck, resnet18, resnet34, resnet50

nn.manual_seed(0)
models = {"ResNet-18": resnet18(), "ResNet-34": resnet34(), "ResNet-50": resnet50()}
for name, model in models.items():
    print(f"{name}: {model.num_parameters():,} parameters")

# %% [markdown]
# ## The shape of an image, stage by stage
#
# A convolution (or pooling) with kernel $k$, stride $s$ and padding $p$ maps a size $n$ to
#
# $$ n' = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 . $$
#
# The stem is a 7x7 convolution with stride 2 and padding 3, then a 3x3 max-pool with stride 2
# and padding 1: $224 \to 112 \to 56$. Each of `layer2`, `layer3` and `layer4` starts with a
# block whose first strided convolution (3x3, stride 2, padding 1) halves the size again:
# $56 \to 28 \to 14 \to 7$. The global average pool then leaves one number per channel.
# First the arithmetic, then the network's own answer: we run the stem and each stage in turn
# on a zero image and print what comes out.

# %% [markdown]
# ResNet-34, drawn from `minires.models.resnet34` and one forward pass: every block, solid
# shortcuts where the shape stays, dashed ones where it changes, each stage's output shape
# (`draw_resnet34`). The same for ResNet-50 with bottlenecks, and for the paper's CIFAR ResNet-20:

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_resnet34();

# %%
diagrams.draw_resnet50();

# %%
diagrams.draw_resnet20();

# %%
def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


n = 224
print("by hand:   input", n, end="")
for what, k, s, p in [("conv1", 7, 2, 3), ("maxpool", 3, 2, 1), ("layer2", 3, 2, 1), ("layer3", 3, 2, 1),
                      ("layer4", 3, 2, 1)]:
    n = out_size(n, k, s, p)
    print(f" -> {what} {n}", end="")
print()

with nn.no_grad():
    for name, model in models.items():
        model.eval()
        x = np.zeros((1, 3, 224, 224), dtype=np.float32)
        shapes = [("input", x.shape)]
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        shapes.append(("stem", x.shape))
        for i, stage in enumerate(model.stages(), 1):
            x = stage(x)
            shapes.append((f"layer{i}", x.shape))
        shapes.append(("logits", model.fc(model.flatten(model.avgpool(x))).shape))
        print(f"{name:10} " + "  ".join(f"{k} {tuple(v[1:])}" for k, v in shapes))

# %% [markdown]
# ResNet-18 and 34 end with 512 channels, ResNet-50 with 2048: its blocks are bottlenecks,
# whose output is 4 times wider than their inner width (the `expansion`). `minires.summary`
# records every module's output during a real forward pass; `depth=2` shows the stages and
# their blocks with the parameters of each:

# %%
print(minires.summary(models["ResNet-18"], (3, 224, 224), depth=2))

# %% [markdown]
# ## Table 1, rebuilt from the models
#
# Each row of the paper's table is a stage: its output size, and its block written as a stack
# of convolutions ("3x3, 64" means a 3x3 convolution with 64 output channels) times the number
# of blocks. Below, every entry is read off the model objects: the kernel, channels and stride
# of the stem's convolution and max-pool, the kernel and channel count of each convolution in a
# stage's first block, the number of blocks, and the output size from a forward pass. The last
# row counts multiply-adds for one 224x224 image: every output element of a convolution costs
# $C_{in} \cdot k_h \cdot k_w$ multiply-adds, so a convolution costs
#
# $$ \text{mult-adds} = N \cdot C_{out} \cdot H_{out} \cdot W_{out} \cdot C_{in} \cdot k_h k_w , $$
#
# and the fully connected layer $C_{in} \cdot C_{out}$. (We record each convolution's output
# size by wrapping its `forward`, the same trick `minires.summary` uses.)

# %%
def conv_mult_adds(model, input_shape=(1, 3, 224, 224)):
    """Multiply-adds of every convolution and of the fc layer, from one forward pass."""
    total = [0]

    def counting(conv):
        forward = type(conv).forward.__get__(conv)

        def counted(x):
            y = forward(x)
            KH, KW = conv.kernel_size
            total[0] += y.size * (conv.in_channels // conv.groups) * KH * KW
            return y
        return counted

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        conv.forward = counting(conv)          # an instance attribute shadows the class's method
    with nn.no_grad():
        model.eval()(np.zeros(input_shape, dtype=np.float32))
    for conv in convs:
        del conv.forward                       # back to the class's forward
    return total[0] + model.fc.weight.data.size


def block_recipe(block):
    """'3x3, 64 / 3x3, 64' for a basic block: kernel and output channels of each convolution."""
    convs = [block.conv1, block.conv2] + ([block.conv3] if isinstance(block, Bottleneck) else [])
    return " / ".join(f"{c.kernel_size[0]}x{c.kernel_size[1]}, {c.out_channels}" for c in convs)


def stem_recipe(model):
    """'7x7, 64, /2; 3x3 max pool, /2': the stem's convolution and max-pool, read off the model."""
    conv, pool = model.conv1, model.maxpool
    return (f"{conv.kernel_size[0]}x{conv.kernel_size[1]}, {conv.out_channels}, /{conv.stride[0]}; "
            f"{pool.kernel_size[0]}x{pool.kernel_size[1]} max pool, /{pool.stride[0]}")


rows = {"stem": [], "layer1": [], "layer2": [], "layer3": [], "layer4": [], "mult-adds": []}
for name, model in models.items():
    with nn.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(np.zeros((1, 3, 224, 224), np.float32)))))
        rows["stem"].append(f"{stem_recipe(model)} -> {x.shape[2]}x{x.shape[3]}")
        for i, stage in enumerate(model.stages(), 1):
            x = stage(x)
            rows[f"layer{i}"].append(f"[{block_recipe(stage[0])}] x {len(stage)}  -> {x.shape[2]}x{x.shape[3]}")
    rows["mult-adds"].append(f"{conv_mult_adds(model) / 1e9:.2f} x 10^9")

print(f"{'':10}" + "".join(f"{name:42}" for name in models))
for row, cells in rows.items():
    print(f"{row:10}" + "".join(f"{c:42}" for c in cells))

# %% [markdown]
# The paper's Table 1 gives 1.8, 3.6 and 3.8 billion "FLOPs" (it means multiply-adds) for
# ResNet-18, 34 and 50. The first two agree. Our ResNet-50 comes out higher (the table's last
# row): it is torchvision's "v1.5", which puts the stride of a downsampling bottleneck on its 3x3
# convolution instead of on the first 1x1 (slightly more accurate, and the 1x1 now runs at the
# full resolution). `resnet50_v1` is the paper's original, and it gives the paper's number:

# %%
from minires.models import resnet50_v1

print(f"ResNet-50 v1 (stride on the first 1x1): {conv_mult_adds(resnet50_v1()) / 1e9:.2f} x 10^9 mult-adds")

# %% [markdown]
# ## Which shortcuts are projections, and why
#
# A block computes $\mathrm{ReLU}(F(x) + \text{shortcut}(x))$, and the sum needs $F(x)$ and
# the shortcut to have the same shape. The identity shortcut costs nothing, but it only works
# when the block keeps the shape. Where a block halves the size and changes the channel count,
# the paper's Figure 3 draws the shortcut dashed: torchvision (and the paper's option B) then
# uses a *projection*, a 1x1 convolution with the block's stride followed by batch norm. In
# minires it is the block's `downsample` attribute (None means identity). Which blocks have one?

# %% [markdown]
# How much of the image one output sees, stage after stage along ResNet-18's main path, computed
# from the kernels and strides (`draw_receptive_field`):

# %%
diagrams.draw_receptive_field();

# %%
for name, model in models.items():
    dashed = []
    for i, stage in enumerate(model.stages(), 1):
        for j, block in enumerate(stage):
            if block.downsample is not None:
                conv = block.downsample[0]
                dashed.append(f"layer{i}.{j} ({conv.in_channels}->{conv.out_channels}, stride {conv.stride[0]})")
    blocks = sum(len(s) for s in model.stages())
    print(f"{name}: {len(dashed)} of {blocks} blocks: " + ", ".join(dashed))

# %% [markdown]
# ResNet-18 and 34 need three: the first block of `layer2`, `layer3` and `layer4`, where the
# size halves and the channels double. ResNet-50 needs a fourth, in `layer1.0`: the size stays
# 56x56, but its bottleneck widens 64 channels to 256, so the identity cannot be added either.
#
# What goes wrong without one? Take the first block of `layer2` and add its input to its main
# path as it is:

# %%
block = models["ResNet-18"].layer2[0]
x = np.random.default_rng(0).standard_normal((1, 64, 56, 56)).astype(np.float32)
with nn.no_grad():
    main = block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(x)))))
    print("input", x.shape, " main path", main.shape, " projection", block.downsample(x).shape)
    try:
        main + x
    except ValueError as e:
        print("identity shortcut:", e)

# %% [markdown]
# The projections are cheap: a 1x1 convolution has $C_{in} C_{out}$ weights, against
# $9\, C_{in} C_{out}$ for a 3x3. The paper's CIFAR networks (notebooks 8 and 9) avoid even
# that with option A: take every other pixel and pad the new channels with zeros, no parameters.

# %%
for name, model in models.items():
    proj = sum(b.downsample.num_parameters() for s in model.stages() for b in s if b.downsample is not None)
    print(f"{name}: projections hold {proj:,} parameters, {proj / model.num_parameters():.1%} of the model")

# %% [markdown]
# ## A basic block and a bottleneck on 256 channels
#
# The deeper ResNets (50, 101, 152) use the bottleneck block of the paper's Figure 5: a 1x1
# convolution reduces 256 channels to 64, a 3x3 works on those 64, and a 1x1 expands back to
# 256. A basic block on 256 channels is two 3x3 convolutions, 256 to 256. A convolution holds
# $C_{out} \cdot C_{in} \cdot k_h \cdot k_w$ weights (no biases: batch norm follows each one):
#
# | block | layer | weights |
# |---|---|---|
# | basic | 3x3, 256 -> 256 | $3 \cdot 3 \cdot 256 \cdot 256 = 589{,}824$ |
# | basic | 3x3, 256 -> 256 | $589{,}824$ |
# | bottleneck | 1x1, 256 -> 64 | $1 \cdot 1 \cdot 256 \cdot 64 = 16{,}384$ |
# | bottleneck | 3x3, 64 -> 64 | $3 \cdot 3 \cdot 64 \cdot 64 = 36{,}864$ |
# | bottleneck | 1x1, 64 -> 256 | $1 \cdot 1 \cdot 64 \cdot 256 = 16{,}384$ |
#
# Now build the two blocks and count what they really hold:

# %%
basic = BasicBlock(256, 256)               # inplanes 256, planes 256
bottleneck = Bottleneck(256, 64)           # inplanes 256, planes 64, output 4 * 64 = 256


def count(block):
    """Weights of each convolution, with the product that gives it; and the batch-norm parameters."""
    conv_total = 0
    for name, m in block.named_modules():
        if isinstance(m, nn.Conv2d):
            O, C, KH, KW = m.weight.data.shape
            print(f"  {name}: {KH} x {KW} x {C} x {O} = {m.weight.data.size:,}")
            conv_total += m.weight.data.size
    bn = sum(m.num_parameters() for m in block.modules() if isinstance(m, nn.BatchNorm2d))
    print(f"  convolutions: {conv_total:,}   batch norms (gamma, beta): {bn:,}   "
          f"all: {block.num_parameters():,}")
    return conv_total


print("basic block, 256 -> 256:")
w_basic = count(basic)
print("bottleneck, 256 -> 64 -> 256:")
w_bottle = count(bottleneck)
print(f"\nthe bottleneck has {w_basic / w_bottle:.1f}x fewer convolution weights "
      f"({w_basic:,} vs {w_bottle:,})")
assert (w_basic, w_bottle) == (1_179_648, 69_632)

# %% [markdown]
# Both blocks map a $(N, 256, H, W)$ input to an output of the same shape, and at stride 1
# each weight is used once per output pixel, so the multiply-adds are in the same ratio as the weights.
# Check with a forward pass on a 14x14 map (ResNet-50's `layer3` size):

# %%
x = np.random.default_rng(1).standard_normal((1, 256, 14, 14)).astype(np.float32)
with nn.no_grad():
    print("basic     ", basic.eval()(x).shape, f"{w_basic * 14 * 14 / 1e6:.1f} M mult-adds")
    print("bottleneck", bottleneck.eval()(x).shape, f"{w_bottle * 14 * 14 / 1e6:.1f} M mult-adds")

# %% [markdown]
# That is how ResNet-50, with 50 layers, costs barely more than ResNet-34: each of its
# bottlenecks does the work of a narrow 3x3 convolution, with the 1x1 layers moving in and out
# of a wide representation for the shortcut to carry. The paper's Figure 5 makes the same
# comparison at equal cost instead: a basic block on 64 channels (73,728 weights) against a
# bottleneck on 256 (69,632).
#
# **Try it**: print `minires.summary(resnet50(), (3, 224, 224), depth=3)` and find the
# projection in `layer1.0`; or build `resnet101()` and count its blocks per stage.
