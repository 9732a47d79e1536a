# Source of tutorials/15_the_tutorial_code.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 15. The tutorial's own code, line by line
#
# minires grew from a Chinese ResNet tutorial that writes the network twice, in PyTorch and in
# TensorFlow/Keras. This chapter reads that code next to minires's and finishes what it starts:
#
# 1. its PyTorch listings (`BasicBlock`, `Bottleneck`, `ResNet`, the builders), each next to the
#    minires code it became;
# 2. its TensorFlow/Keras listings, next to `minires.keras`;
# 3. its slips, each one checked by a cell that computes the right answer;
# 4. what it names and no other chapter shows: Kaiming's `fan_out` initialisation, batch norm
#    instead of dropout, ResNet-101/152 and the 1202-layer CIFAR net;
# 5. transfer learning with `include_top=False`: a trained trunk, frozen, under a new head
#    (`minires.train.transfer`).
#
# The tutorial's code is quoted in the markdown cells as it is printed there (indentation
# restored); the code cells run minires's.

# %%
import ast
import inspect
import time
from pathlib import Path

import numpy as np

from minires import nn
from minires.models import BasicBlock, Bottleneck, ResNet, resnet20, resnet34, resnet50
from minires.models.resnet import init_resnet

nn.manual_seed(0)
rng = np.random.default_rng(0)


def source(obj, first=None, last=None):
    """Print lines first..last (1-based, within obj's source; all by default) of minires's code."""
    lines = inspect.getsource(obj).splitlines()
    print(f"# {inspect.getsourcefile(obj).split('minires/', 1)[-1]}: {obj.__qualname__}")
    print("\n".join(lines[(first or 1) - 1:last]))


# %% [markdown]
# ## 1. The PyTorch half
#
# ### BasicBlock
#
# The tutorial's block (ResNet-18/34):
#
# ```python
# class BasicBlock(nn.Module):
#     expansion = 1
#     def __init__(self, in_channel, out_channel, stride=1, downsample=None, **kwargs):
#         self.conv1 = nn.Conv2d(in_channels=in_channel, out_channels=out_channel,
#                                kernel_size=3, stride=stride, padding=1, bias=False)
#         self.bn1 = nn.BatchNorm2d(out_channel)
#         self.relu = nn.ReLU()
#         self.conv2 = nn.Conv2d(in_channels=out_channel, out_channels=out_channel,
#                                kernel_size=3, stride=1, padding=1, bias=False)
#         self.bn2 = nn.BatchNorm2d(out_channel)
#         self.downsample = downsample
#
#     def forward(self, x):
#         identity = x
#         if self.downsample is not None:
#             identity = self.downsample(x)
#         out = self.relu(self.bn1(self.conv1(x)))     # three lines in the tutorial
#         out = self.bn2(self.conv2(out))              # two lines in the tutorial
#         out += identity
#         out = self.relu(out)
#         return out
# ```
#
# minires's `BasicBlock` has the same attributes, so the same state_dict keys (`conv1.weight`,
# `bn1.running_mean`, `downsample.0.weight`); what changes: each ReLU is its own module (each
# keeps its own mask for the backward, where the tutorial reuses one `self.relu`), and there is
# a `backward`, written out, because minires has no autograd. The `out += identity` line is
# there too; in the backward it becomes the split and the sum:

# %%
source(BasicBlock.forward)
print()
source(BasicBlock.backward)
print("\nstate_dict keys of a block with a projection:", list(BasicBlock(64, 128, 2, nn.Sequential(
    nn.Conv2d(64, 128, 1, stride=2, bias=False), nn.BatchNorm2d(128))).state_dict())[:4], "...")

# %% [markdown]
# ### Bottleneck
#
# The tutorial's deep block (ResNet-50/101/152) computes the width of its 3x3 convolution from
# the ResNeXt arguments, and puts the stride on the 3x3 ("v1.5", its docstring explains why):
#
# ```python
#     def __init__(self, in_channel, out_channel, stride=1, downsample=None,
#                  groups=1, width_per_group=64):
#         width = int(out_channel * (width_per_group / 64.)) * groups
#         self.conv1 = nn.Conv2d(in_channels=in_channel, out_channels=width,
#                                groups=groups, kernel_size=1, stride=1, bias=False)
#         ...
#         self.conv2 = nn.Conv2d(in_channels=width, out_channels=width,
#                                groups=groups, kernel_size=3, stride=stride, bias=False, padding=1)
#         ...
#         self.conv3 = nn.Conv2d(in_channels=width, out_channels=out_channel * self.expansion,
#                                kernel_size=1, stride=1, bias=False)
# ```
#
# Note `groups=groups` on its first 1x1 convolution: torchvision's 1x1s are never grouped. With
# `groups=1` (ResNet) that changes nothing; in its ResNeXt it would split the 1x1 too, so the
# tutorial's ResNeXt is not torchvision's, and torchvision's ResNeXt weights would not load
# (the 1x1's weight has another shape). minires's first lines of `__init__`, and the shapes of
# the tutorial's grouped 1x1 next to torchvision's, for the first block of a ResNeXt-50 32x4d:

# %%
source(Bottleneck.__init__, 1, 7)
ungrouped = Bottleneck(64, 64, groups=32, base_width=4).conv1.weight.shape
grouped = nn.Conv2d(64, 128, 1, groups=32, bias=False).weight.shape
print(f"\nconv1.weight: torchvision and minires {ungrouped}, the tutorial's groups=32 1x1 {grouped}")

# %% [markdown]
# ### ResNet and `_make_layer`
#
# The tutorial's `_make_layer` gives the first block of a stage a projection (the "dashed"
# shortcut) where the stride or the channels change:
#
# ```python
#         if stride != 1 or self.in_channel != channel * block.expansion:
#             downsample = nn.Sequential(
#                 nn.Conv2d(self.in_channel, channel * block.expansion,
#                           kernel_size=1, stride=stride, bias=False),
#                 nn.BatchNorm2d(channel * block.expansion))
# ```
#
# and its `__init__` ends with the initialisation (section 4 asks why `fan_out`):
#
# ```python
#         for m in self.modules():
#             if isinstance(m, nn.Conv2d):
#                 nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
# ```
#
# minires's, line for line (`projection` is that `nn.Sequential`):

# %%
source(ResNet._make_layer)
print()
source(init_resnet, 5, 10)

# %% [markdown]
# `include_top=False` drops the average pool and the classifier in both. What comes out is
# the last feature map, 512 x expansion channels at 1/32 of the input's size:

# %%
x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
for builder in (resnet34, resnet50):
    trunk = builder(include_top=False).eval()
    print(f"{builder.__name__}(include_top=False): {x.shape} -> {trunk(x).shape}")

# %% [markdown]
# ### The builders
#
# The tutorial's five builders, and minires's of the same network (same stages, same block,
# same groups and width per group; the tutorial calls its ResNeXt builders `resnet50_32x4d` and
# `resnet50_32x8d`, see section 3 for the second):
#
# ```python
# def resnet34(num_classe=1000, include_top=True):      # sic: num_classe
#     return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classe, include_top=include_top)
# def resnet50(num_classes=1000, include_top=True):
#     return ResNet(Bottleneck, [3, 4, 6, 3], ...)
# def resnet101(num_classes=1000, include_top=True):
#     return ResNet(Bottleneck, [3, 4, 23, 3], ...)
# def resnet50_32x4d(num_classes=1000, include_top=True):
#     groups = 32
#     width_per_group = 4
#     return ResNet(Bottleneck, [3, 4, 6, 3], ..., groups=groups, width_per_group=width_per_group)
# def resnet50_32x8d(num_classes=1000, include_top=True):
#     groups = 32
#     width_per_group = 8
#     return ResNet(Bottleneck, [3, 4, 23, 3], ..., groups=groups, width_per_group=width_per_group)
# ```
#
# minires's builders, read from their source (nothing is built here):

# %%
from minires.models import MODELS


def resnet_call(fn):
    """(block, stages, groups, width per group) of the ResNet(...) call in a builder's source; a
    keyword handed on from the builder's own (groups=groups) counts as that keyword's default."""
    call = next(n for n in ast.walk(ast.parse(inspect.getsource(fn).strip()))
                if isinstance(n, ast.Call) and ast.unparse(n.func) == "ResNet")
    defaults = {n: p.default for n, p in inspect.signature(fn).parameters.items()}
    kw = {k.arg: eval(ast.unparse(k.value), {}, defaults) for k in call.keywords}     # 32, groups, 64 * 2 ...
    return ast.unparse(call.args[0]), ast.literal_eval(call.args[1]), kw["groups"], kw["width_per_group"], \
        kw.get("stride_in_1x1", False)


TUTORIAL = {"resnet34": ("BasicBlock", [3, 4, 6, 3], 1, 64, False),        # v1.5: the stride on the 3x3
            "resnet50": ("Bottleneck", [3, 4, 6, 3], 1, 64, False),
            "resnet101": ("Bottleneck", [3, 4, 23, 3], 1, 64, False),
            "resnet50_32x4d": ("Bottleneck", [3, 4, 6, 3], 32, 4, False),
            "resnet50_32x8d": ("Bottleneck", [3, 4, 23, 3], 32, 8, False)}
print(f"{'the tutorial':16s} block       stages          groups  width  -> minires")
for name, theirs in TUTORIAL.items():
    ours = [n for n, f in MODELS.items() if f.__module__ == "minires.models.resnet" and resnet_call(f) == theirs]
    print(f"{name:16s} {theirs[0]:11s} {str(theirs[1]):15s} {theirs[2]:6d} {theirs[3]:6d}  -> {ours}")

# %% [markdown]
# (minires's plain ResNets hand `groups` and `width_per_group` on from their own keywords, whose
# defaults are read here; `resnext50_32x4d` and `resnext101_32x8d` fix them.) The
# tutorial ends its PyTorch half with a test, `resnet101(5)` on `torch.rand((4, 3, 224, 224))`.
# The same in minires, on a smaller batch of smaller images (224 x 224 takes a while on a CPU):

# %%
from minires.models import resnet101

t0 = time.perf_counter()
r101 = resnet101(num_classes=5).eval()
out = r101(rng.random((2, 3, 64, 64), dtype=np.float32))
print(f"resnet101(num_classes=5): output {out.shape}, {time.perf_counter() - t0:.1f} s to build and run")

# %% [markdown]
# ## 2. The TensorFlow/Keras half
#
# `tools/seed_tf_resnet.py` is the tutorial's TensorFlow code as written (indentation restored),
# and notebook 14 reads it for its names and files. Its blocks use Keras's layers where the
# PyTorch half uses torch's:
#
# ```python
# self.conv1 = layers.Conv2D(out_channel, kernel_size=3, strides=strides, padding="SAME", use_bias=False)
# self.bn1 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
# ...
# x = self.add([x, identity])
# ...
# x = layers.MaxPool2D(pool_size=3, strides=2, padding="SAME")(x)
# ...
# x = layers.GlobalAvgPool2D()(x)
# x = layers.Dense(num_classes, name="logits")(x)
# predict = layers.Softmax()(x)
# ```
#
# `minires.keras.tf_resnet34/50/101` is minires's `ResNet` with those layers swapped in. Each
# Keras layer of the code above, in the order the code makes them, and the minires module that
# does its work in `tf_resnet34` (found by walking the model):

# %%
from minires.keras import tf_resnet34

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tools" / "notebooks").is_dir())  # the checkout
SEED = ROOT / "tools" / "seed_tf_resnet.py"
calls = [ast.unparse(n) for n in ast.walk(ast.parse(SEED.read_text(encoding="utf-8")))
         if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and ast.unparse(n.func).startswith("layers.")]
kinds = list(dict.fromkeys(c.split("(")[0] for c in calls))
tf34 = tf_resnet34(num_classes=10)
named = dict(tf34.keras_layers())
where = {"layers.Conv2D": named["block2/unit_1/conv1"], "layers.BatchNormalization": named["block2/unit_1/conv1/BatchNorm"],
         "layers.ReLU": tf34.layer2[0].relu1, "layers.Add": "out += identity in BasicBlock.forward",
         "layers.Input": "the input array, checked by ResNet.forward", "layers.MaxPool2D": tf34.maxpool,
         "layers.GlobalAvgPool2D": tf34.avgpool, "layers.Dense": named["logits"], "layers.Softmax": tf34.softmax}
for k in kinds:
    print(f"{k:26s} ({sum(c.startswith(k + '(') for c in calls)} in the code) -> {where[k]!r}"[:150])

# %% [markdown]
# Read each line's two halves: `padding="SAME"` is minires's `padding="same"` (TensorFlow's
# rule, asymmetric at stride 2: notebook 14, section 2), `momentum=0.9` is PyTorch's 0.1
# (Keras's convention runs the other way: notebook 14, section 3), and the `logits` Dense is
# minires's `fc`, named for the weight files.

# %% [markdown]
# ## 3. The slips, computed
#
# Notebook 14 (section 7) checks these from the tutorial's code with `ast`; here each one gets
# one short cell.
#
# **"1170648".** The text compares the two blocks on a 256-channel input:
#
# > 同样输入一个channel为256的特征矩阵, 如果使用左侧的残差结构大约需要1170648个参数, 但如果使用右侧的残差结构只需要69632个参数
#
# ("for the same 256-channel input, the left block needs about 1170648 parameters, the right
# one only 69632"). The left block is two 3x3 convolutions of 256 channels, 3 x 3 x 256 x 256
# weights each (biases off); written as one 3 x 3 x 256 x 512 product it is the same number.
# Counted from minires's convolutions, next to the text's figure:

# %%
TEXT_BASIC, TEXT_BOTTLENECK = 1170648, 69632             # as printed in the tutorial
one = nn.Conv2d(256, 256, 3, padding=1, bias=False).weight.data.size
basic = sum(m.weight.data.size for m in BasicBlock(256, 256).modules() if isinstance(m, nn.Conv2d))
bottleneck = sum(m.weight.data.size for m in Bottleneck(256, 64).modules() if isinstance(m, nn.Conv2d))
print(f"one 3x3 conv, 256 -> 256: {one:,} weights; two of them: {2 * one:,}; 3*3*256*512 = {3 * 3 * 256 * 512:,}")
print(f"basic block:  counted {basic:,}, the text {TEXT_BASIC:,}: equal {basic == TEXT_BASIC}")
print(f"bottleneck:   counted {bottleneck:,}, the text {TEXT_BOTTLENECK:,}: equal {bottleneck == TEXT_BOTTLENECK}")

# %% [markdown]
# **"ResNet151".** The text says 对于ResNet18/34/50/101/151 ("for ResNet18/34/50/101/151") a few
# paragraphs after naming ResNet152. The depth of a ResNet counts its layers with weights on the
# main path: the stem's convolution, every block's convolutions and the classifier (projection
# shortcuts not counted). Counted on the networks themselves:

# %%
def depth(model):
    """Conv2d and Linear layers outside the shortcuts: the number in a ResNet's name."""
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for name, m in model.named_modules() if "downsample" not in name)


from minires.models import resnet152

r152 = resnet152()
for name, model in [("resnet34", resnet34()), ("resnet50", resnet50()), ("resnet101", r101), ("resnet152", r152)]:
    print(f"{name:10s} {depth(model)} layers, {model.num_parameters():>11,} parameters ({model.fc.out_features} classes)")
print("151 possible?", {"basic blocks": (151 - 2) % 2 == 0, "bottlenecks": (151 - 2) % 3 == 0})

# %% [markdown]
# **`resnet50_32x8d`.** Its stages are `[3, 4, 23, 3]` and its comment names
# `resnext101_32x8d-8ba56ff5.pth`: the function is named for 50 layers and builds 101. Its stages
# against those of the ResNet-101 built above, and the depth they make:

# %%
TUTORIAL_32X8D_STAGES = [3, 4, 23, 3]                   # ResNet(Bottleneck, [3, 4, 23, 3], groups=32, ...)
print("resnet101's stages, counted:", [len(s) for s in r101.stages()])
print("depth of [3, 4, 23, 3] bottlenecks: 1 + 3 x", sum(TUTORIAL_32X8D_STAGES), "+ 1 =",
      1 + 3 * sum(TUTORIAL_32X8D_STAGES) + 1)
print("minires's ResNeXt-101 32x8d:", resnet_call(MODELS["resnext101_32x8d"]))

# %% [markdown]
# **Width and height, swapped.** The Keras `resnet34(im_width=224, im_height=224, ...)` calls
# `_resnet(BasicBlock, [3, 4, 6, 3], im_height, im_width, ...)`, but `_resnet` is
# `def _resnet(block, block_num, im_width, im_height, ...)` and builds
# `layers.Input(shape=(im_height, im_width, 3))`. What `Input` gets for a 240-high, 320-wide
# request, computed by binding the call's arguments as Python would (read from
# `tools/seed_tf_resnet.py`):

# %%
seed_tree = {n.name: n for n in ast.parse(SEED.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)}
params = [a.arg for a in seed_tree["_resnet"].args.args]
for fn in ("resnet34", "resnet50", "resnet101"):
    call = next(n for n in ast.walk(seed_tree[fn]) if isinstance(n, ast.Call) and ast.unparse(n.func) == "_resnet")
    asked = {"im_width": 320, "im_height": 240}
    inside = {p: asked.get(ast.unparse(a)) for p, a in zip(params, call.args)}
    print(f"{fn}(im_width=320, im_height=240): Input(shape={(inside['im_height'], inside['im_width'], 3)}); "
          f"an NHWC image 240 high and 320 wide is {(240, 320, 3)}")

# %% [markdown]
# Square images (the default 224) hide it. minires's `tf_resnet34` takes no size at all: like
# every model here it works out its shapes from the batch it is given.

# %% [markdown]
# ## 4. What the tutorial names and no chapter shows
#
# ### Kaiming initialisation, `fan_out`
#
# The tutorial initialises every convolution with `kaiming_normal_(mode='fan_out',
# nonlinearity='relu')`: normal weights of variance 2 / fan_out, fan_out = out_channels x kh x kw.
# minires's twin:

# %%
source(nn.init.kaiming_normal_fan_out)

# %% [markdown]
# Why 2 / fan? A ReLU layer keeps half of a symmetric input's second moment, so the variance of
# the activations is multiplied by fan_in x Var(w) / 2 at each layer. Var(w) = 2 / fan_in makes
# that factor 1 on the way forward (He et al., 2015); Var(w) = 2 / fan_out makes the same factor 1
# for the *gradients* on the way back, where each input pixel collects from out_channels x kh x kw
# weights. The two differ only where the channels change, by that layer's ratio, so over a whole
# network by (first channels / last channels): a constant, not a power of the depth. A bad scale
# (here PyTorch's default for a convolution without the Kaiming call, uniform with bound
# 1 / sqrt(fan_in), variance 1 / (3 fan_in)) multiplies by the same factor at every layer, and
# that *is* a power of the depth. The measurement: a plain stack of convolutions and ReLUs, no
# batch norm, widening twice, a random batch through it and a random gradient
# back; the second moment (mean square) of each layer's output, and of the gradient reaching each
# layer's input. The convolutions are 1x1: the fan arithmetic is the same (kh = kw = 1), and a 3x3
# on maps this small would lose a good share of its inputs to the zero padding at the borders, which
# blurs the comparison. Narrow layers blur it too (each layer's factor is random around its mean),
# so the stack is wide: 64 -> 128 -> 256 channels. The fan_out row uses minires's own `kaiming_normal_fan_out`:

# %%
WIDTHS = [64] * 10 + [128] * 10 + [256] * 10
INITS = {"kaiming fan_in": lambda s: np.sqrt(2 / s[1]) * rng.standard_normal(s),      # s = (out, in, 1, 1)
         "kaiming fan_out": nn.init.kaiming_normal_fan_out,
         "uniform 1/sqrt(fan_in)": lambda s: rng.uniform(-1, 1, s) / np.sqrt(s[1])}


def plain_stack(init):
    layers, c = [], WIDTHS[0]
    for w in WIDTHS:
        conv = nn.Conv2d(c, w, 1, bias=False).to(dtype=np.float64)
        conv.weight.data[...] = init(conv.weight.shape)
        layers += [conv, nn.ReLU()]
        c = w
    return nn.Sequential(*layers)


x0 = rng.standard_normal((8, WIDTHS[0], 4, 4))
print(f"{'':24s}{'mean square of the output at layer':^40s}|  of the gradient at layer")
print(f"{'':24s}" + "".join(f"{i:>10d}" for i in (1, 10, 20, 30)) + " |" + "".join(f"{i:>10d}" for i in (30, 20, 10, 1)))
for name, init in INITS.items():
    net = plain_stack(init)
    acts, h = [], x0
    for i, m in enumerate(net):
        h = m(h)
        if i % 2 == 1:
            acts.append(np.mean(h ** 2))
    grads, g = [], rng.standard_normal(h.shape)
    for i, m in reversed(list(enumerate(net))):
        g = m.backward(g)
        if i % 2 == 0:
            grads.append(np.mean(g ** 2))
    grads = grads[::-1]
    print(f"{name:24s}" + "".join(f"{acts[i - 1]:10.2g}" for i in (1, 10, 20, 30)) + " |"
          + "".join(f"{grads[i - 1]:10.2g}" for i in (30, 20, 10, 1)))

# %% [markdown]
# Read the table row by row: fan_in keeps the forward's mean square level within each stage and
# lets the gradient's jump where the channels double; fan_out the other way round; the uniform
# default shrinks both by a constant factor per layer, to nothing at 30 layers. With batch norm
# after every convolution (as in a ResNet) the forward is renormalised at each layer anyway, so
# what the initialisation still decides is the backward at the start of training, and that is
# what `fan_out` keeps level: torchvision's choice, and the tutorial's.
#
# ### Batch norm instead of dropout
#
# Among the network's highlights the tutorial lists 使用batch normalization加速训练(放弃使用dropout):
# "batch normalization to speed up training (dropout given up)". Two computed reasons. First,
# batch norm already adds noise: in training each image is normalised with its batch's
# statistics, so the same image comes out differently in another batch, a regulariser of its own.
# Second, dropout before a batch norm breaks it at test time: in training dropout scales what it
# keeps by 1 / (1 - p), so the batch norm learns the variance of the dropped-out signal; at test
# time dropout passes everything unscaled, the variance is smaller, and the batch norm's output is
# no longer of unit variance (Li et al., 2019, "Understanding the disharmony between dropout and
# batch normalization").

# %%
bn = nn.BatchNorm2d(4).to(dtype=np.float64)
image = rng.standard_normal((1, 4, 6, 6)) + 1
outs = [bn(np.concatenate([image, rng.standard_normal((7, 4, 6, 6)) * s]))[0] for s in (0.5, 2.0)]
print("one image in two batches, batch norm in training mode: largest difference of its outputs",
      f"{np.abs(outs[0] - outs[1]).max():.3f}")

drop, bn = nn.Dropout(0.5), nn.BatchNorm2d(16, momentum=0.1).to(dtype=np.float64)
drop.train(), bn.train()
for _ in range(200):                                     # train: dropout, then batch norm
    bn(drop(rng.standard_normal((32, 16, 4, 4)) + 2))
drop.eval(), bn.eval()
test_in = rng.standard_normal((256, 16, 4, 4)) + 2
test = bn(drop(test_in))
print(f"the inputs' variance {test_in.var():.2f}; batch norm's running variance, learnt on them through "
      f"dropout: {bn.running_var.mean():.2f}")
print(f"the output's variance: in eval mode {test.var():.3f}; a batch norm in training mode gives 1")

# %% [markdown]
# Dropout doubled what it kept, so the running variance batch norm learnt is that of the
# dropped-out signal, and at test time it divides by too much. The ResNet has no dropout: batch
# norm after every convolution, and one Linear layer at the end.
#
# ### Deeper: ResNet-101, ResNet-152 and the 1202-layer CIFAR net
#
# "超深的网络结构(突破1000层)": "ultra-deep, beyond 1000 layers". ResNet-101 and 152 were built
# above; the paper's CIFAR experiment goes to 1202 layers (n = 200 basic blocks per stage, section
# 4.2), which minires builds as `resnet1202`. Its layers counted the same way, its parameters, and
# one forward and backward on two digit-sized images:

# %% [markdown]
# Blocks per stage of every depth, counted from the models (`draw_depth_comparison`), and where
# their parameters are, stage by stage (`draw_params_per_stage`):

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_depth_comparison();

# %%
diagrams.draw_params_per_stage();

# %%
from minires.models import resnet1202

t0 = time.perf_counter()
r1202 = resnet1202(num_classes=10, in_channels=1)
xb = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
logits = r1202(xb)
r1202.backward(np.ones_like(logits))
seconds = time.perf_counter() - t0
print(f"resnet1202: {depth(r1202)} layers with weights, {r1202.num_parameters():,} parameters, "
      f"{sum(len(s) for s in r1202.stages())} blocks; logits {logits.shape}; built, forward and backward "
      f"in {seconds:.1f} s")
for name, model in [("resnet20", resnet20(in_channels=1)), ("resnet101", r101), ("resnet152", r152), ("resnet1202", r1202)]:
    print(f"   {name:11s} {depth(model):5d} layers {model.num_parameters():>12,} parameters "
          f"({model.fc.out_features} classes, {model.conv1.in_channels} input channels)")

# %% [markdown]
# The 1202-layer net has fewer parameters than ResNet-101: 16, 32 and 64 channels against
# ImageNet's 64 to 2048. The paper trains it without trouble and finds it *worse* on the test set
# than ResNet-110 (7.93% error against 6.43%): overfitting, not degradation.
#
# ## 5. Transfer learning with `include_top=False`
#
# `include_top` is in the tutorial's builders so that a reader can take a network trained on
# ImageNet, keep its trunk and train a new classifier for their own classes. There are no downloads
# here, so the "pretrained" trunk is trained in this notebook: a ResNet-20 learns the digits 0 to 4,
# then its trunk, frozen, serves a new head that learns 5 to 9. The API (`minires/train/transfer.py`):
#
# - `Module.freeze()` / `unfreeze()`: `requires_grad = False` on every parameter below, and eval
#   mode that `train()` keeps (frozen batch norms use, and keep, the running statistics they learnt);
# - `SGD` skips parameters whose `requires_grad` is False;
# - `with_new_head(model, num_classes)`: a fresh `fc` on a model that has one, or, on a model built
#   with `include_top=False`, an average pool and a `Linear`; everything else frozen;
# - `trunk_features(trunk, images)`: the trunk's output once, without keeping anything for a backward.

# %%
from minires.data import batches, load_dataset
from minires.nn import CrossEntropyLoss
from minires.train import SGD, evaluate
from minires.train.transfer import feature_channels, trunk_features, with_new_head

source(with_new_head, 1, 1)
train_set, test_set = load_dataset("digits")


def classes(ds, digits):
    """The images of ``digits``, relabelled 0, 1, ... in that order."""
    part = ds.subset(np.flatnonzero(np.isin(ds.labels, digits)))
    part.labels = np.searchsorted(digits, part.labels)
    part.classes = [ds.classes[d] for d in digits]
    return part


def train(model, ds, epochs, lr=0.05):
    """SGD with momentum over every parameter of ``model`` (SGD itself skips the frozen ones), batches
    of 32 with the data set's augmentation (random shifts)."""
    opt, loss = SGD(model.parameters(), lr=lr, momentum=0.9), CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        for x, y in batches(ds, 32, rng=epoch, augment=ds.augment):
            loss(model(x), y)
            opt.zero_grad()
            model.backward(loss.backward())
            opt.step()
    return model


def accuracy(model, ds):
    return evaluate(model, batches(ds, 256, shuffle=False), CrossEntropyLoss())[1]


FIRST, SECOND = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
first_train, first_test = classes(train_set, FIRST), classes(test_set, FIRST)
second_train, second_test = classes(train_set, SECOND), classes(test_set, SECOND)
t0 = time.perf_counter()
nn.manual_seed(0)
pretrained = train(resnet20(num_classes=5, in_channels=1), first_train, epochs=4)
print(f"ResNet-20 trained on the digits {FIRST}: test accuracy {accuracy(pretrained, first_test):.1%} "
      f"({time.perf_counter() - t0:.1f} s)")

# %% [markdown]
# Now the new head. `with_new_head` swaps `fc` for a fresh `Linear` and freezes the rest; only
# the head's weight and bias are still trainable, `model.train()` leaves the trunk in eval mode,
# and after training every trunk array, running statistics included, is what pretraining left:

# %%
model = with_new_head(pretrained, num_classes=5)
print("trainable:", [n for n, p in model.named_parameters() if p.requires_grad])
model.train()
print("training mode after model.train():", {n: m.training for n, m in model.named_children()})
before = {k: v.copy() for k, v in model.state_dict().items()}
t0 = time.perf_counter()
train(model, second_train, epochs=1, lr=0.1)
changed = [k for k, v in model.state_dict().items() if not np.array_equal(v, before[k])]
print(f"one epoch of the head on {SECOND} in {time.perf_counter() - t0:.1f} s: test accuracy "
      f"{accuracy(model, second_test):.1%}; arrays changed: {changed}")

# %% [markdown]
# That backward still ran through the whole frozen trunk: its layers add into their `.grad` as
# always, and SGD leaves those parameters alone. When the trunk comes first, its features can be
# computed once instead, with `trunk_features`, and the head trained on them alone: each step a
# matrix product instead of a pass through twenty layers. The CIFAR nets have no `include_top`;
# their trunk is their children up to `fc`, in a `Sequential`. The same head, trained the same way
# on the features of the pretrained trunk and on those of an untrained one (random weights), the
# baseline that says what pretraining gave:

# %%
def trunk_of(model):
    """A CIFAR net without its classifier: x (N, C, H, W) -> pooled features (N, 64)."""
    return nn.Sequential(*[m for name, m in model.named_children() if name != "fc"])


def train_head(features, labels, epochs=30, seed=0):
    nn.manual_seed(seed)
    head, loss = nn.Linear(features.shape[1], len(SECOND)), CrossEntropyLoss()
    opt = SGD(head.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(features))
        for idx in np.array_split(order, len(features) // 32):
            loss(head(features[idx]), labels[idx])
            opt.zero_grad()
            head.backward(loss.backward())
            opt.step()
    return head


x_train = np.concatenate([x for x, _ in batches(second_train, 512, shuffle=False)])   # normalised as in training
x_test = np.concatenate([x for x, _ in batches(second_test, 512, shuffle=False)])
nn.manual_seed(1)
for name, trunk in [("pretrained on 0-4", trunk_of(pretrained)),
                    ("untrained", trunk_of(resnet20(num_classes=5, in_channels=1)))]:
    t0 = time.perf_counter()
    f_train, f_test = trunk_features(trunk, x_train), trunk_features(trunk, x_test)
    head = train_head(f_train, second_train.labels)
    acc = float(np.mean(head(f_test).argmax(1) == second_test.labels))
    print(f"trunk {name:18s} features {f_train.shape}: the head's test accuracy on {SECOND} {acc:.1%} "
          f"({time.perf_counter() - t0:.1f} s)")

# %% [markdown]
# Read the two accuracies against each other: the trunk learnt strokes and shapes from five
# digits, and the other five are told apart from them by a linear classifier alone.
#
# **`include_top=False`.** The ImageNet-style ResNets (and the tutorial's) build their trunk
# directly. Its output is a feature map, so the head needs the average pool too, and
# `with_new_head` puts the trunk in a `Sequential` with one (shapes only here: a ResNet-18 on
# digits enlarged to 32 x 32):

# %%
trunk = MODELS["resnet18"](include_top=False, in_channels=1)
big = np.repeat(np.repeat(x_test[:4], 4, axis=2), 4, axis=3)
print("resnet18(include_top=False):", big.shape, "->", trunk_features(trunk, big).shape,
      f"(feature_channels: {feature_channels(trunk)})")
wrapped = with_new_head(trunk, num_classes=5)
print("with_new_head(trunk, 5):", type(wrapped).__name__, [type(m).__name__ for m in wrapped], wrapped[-1])
print("its output for those images:", wrapped(big).shape, "; trainable:",
      [n for n, p in wrapped.named_parameters() if p.requires_grad])

# %% [markdown]
# `unfreeze()` hands the whole network back to the optimizer, for fine-tuning once the head has
# settled (usually with a smaller learning rate). That is the tutorial's `include_top`, finished:
# a trunk from one task, a head for another, and a line of code for each.
