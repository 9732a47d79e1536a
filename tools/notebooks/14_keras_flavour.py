# Source of tutorials/14_keras_flavour.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 14. The Keras flavour: the same ResNet, another network
#
# The tutorial minires grew from writes every model twice, in PyTorch and in TensorFlow/Keras.
# The two look alike and are not the same network. In this notebook you will
#
# 1. feed the same images as NCHW (PyTorch) and NHWC (Keras) batches;
# 2. see TensorFlow's `padding="same"` put a strided window one pixel off PyTorch's, with a picture;
# 3. translate batch norm's momentum between the two conventions;
# 4. classify one image with both flavours, each with its own weights;
# 5. meet ResNet v2, the pre-activation network, and watch its gradients at depth next to v1's;
# 6. open the weights files the tutorial's own TensorFlow code writes, see why none of them carries
#    the tutorial's layer names, and load each into minires all the same;
# 7. check the tutorial's other slips, each from code.
#
# **Weights.** With torchvision's `resnet50-11ad3fa6.pth` and Keras's
# `resnet50_weights_tf_dim_ordering_tf_kernels.h5` in this folder (`tutorials/`), section 4 uses
# them. Without them (as in the test run, which has no internet) both models keep random weights
# and **their predictions are meaningless**; everything else runs the same way.

# %%
%matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minires import nn
from minires.keras import keras_resnet50, tf_resnet50
from minires.models import resnet50
from minires.keras.blocks import BottleneckV1, PreActBottleneck
from minires.nn.padding import same_padding

nn.manual_seed(0)
rng = np.random.default_rng(0)

# The repository's root: the first folder, from here upwards, that holds tests/fixtures. The
# notebook runs from tutorials/ or from the book's docs/chapters/, and paths built from ROOT
# work from both.
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tests" / "fixtures").is_dir())
print("repository root:", ROOT)

# %% [markdown]
# ## 1. NCHW and NHWC
#
# PyTorch stores a batch as (N, C, H, W): each channel a contiguous image. TensorFlow as
# (N, H, W, C): each pixel's channels side by side. minires's layers take NCHW; a Keras-flavoured
# model built with `data_format="channels_last"` takes NHWC, and gives its input gradient back
# in NHWC. What does that cost? The model only *transposes views* at its two ends: inside,
# activations are stored channel-major either way (`minires/engine/memory.py`), and the stem's
# padding writes a fresh copy in that order, a copy the NCHW path makes too.

# %% [markdown]
# The same array in memory in both layouts, with the strides NumPy reports (`draw_layouts`):

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_layouts();

# %%
x_nchw = rng.standard_normal((2, 3, 64, 48)).astype(np.float32)
x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
first = tf_resnet50(num_classes=10).eval()
last = tf_resnet50(num_classes=10, data_format="channels_last").eval()
last.load_state_dict(first.state_dict())
p_first, p_last = first(x_nchw), last(x_nhwc)
print("NCHW input", x_nchw.shape, "-> probabilities", p_first.shape)
print("NHWC input", x_nhwc.shape, "-> probabilities", p_last.shape)
print("largest difference:", float(np.abs(p_first - p_last).max()))
print("strides of the NHWC batch seen as NCHW (bytes):", x_nhwc.transpose(0, 3, 1, 2).strides)

# %% [markdown]
# ## 2. "same" is not symmetric at stride 2
#
# PyTorch pads each side by the number you give it. TensorFlow's `padding="same"` asks for an
# output of ceil(H / S) and pads whatever that takes, `total = max((ceil(H/S) - 1) * S + K - H, 0)`,
# with the odd pixel **after**. For the ResNet stem, a 7x7 convolution of stride 2:

# %% [markdown]
# TensorFlow's "same" against PyTorch's symmetric padding for an even input at stride 2, from the
# library's own padding functions (`draw_same_padding`):

# %%
diagrams.draw_same_padding();

# %%
for size in (224, 225, 64, 63):
    before, after = same_padding(size, 7, 2)
    print(f"H = {size}: TensorFlow pads {before} before and {after} after; PyTorch's padding=3 pads 3 and 3")

# %% [markdown]
# On 224 the outputs have the same size, 112, but every window starts one pixel later in
# TensorFlow: its first window covers rows -2..4, PyTorch's rows -3..3. Drawn on a 16-pixel
# row for readability:

# %%
def windows(size, k, s, before):
    out = -(-size // s) if before is None else (size + 2 * 3 - k) // s + 1
    start = -(same_padding(size, k, s)[0] if before is None else before)
    return [(start + i * s, start + i * s + k - 1) for i in range(out)]

size, k, s = 16, 7, 2
fig, axes = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True)
for ax, (title, before) in zip(axes, [("PyTorch, padding=3", 3), ("TensorFlow, padding='same'", None)]):
    wins = windows(size, k, s, before)
    for i, (a, b) in enumerate(wins):
        ax.plot([a, b], [i, i], lw=5, color="tab:orange" if (a < 0 or b >= size) else "tab:blue")
    ax.axvspan(-0.5, size - 0.5, color="0.9", zorder=0)
    ax.set_title(f"{title}: {len(wins)} windows, padded {-wins[0][0]} before, {max(0, wins[-1][1] - size + 1)} after")
    ax.set_ylabel("output")
axes[1].set_xlabel("input pixel (grey: the image; orange windows reach into the padding)")
plt.tight_layout()

# %% [markdown]
# So the same weights give different numbers in the two flavours. minires's
# `Conv2d(..., padding="same")` pads by TensorFlow's rule (computed from the input size in
# `forward`) and then runs a valid convolution; its backward is the valid convolution's, cropped.
# At stride 1 with an odd kernel "same" is symmetric whatever the size, and Conv2d simply uses its
# own symmetric padding there (`minires/nn/padding.py:symmetric_same`).

# %%
conv = nn.Conv2d(3, 4, 7, stride=2, padding="same", bias=False).to(dtype=np.float64)
sym = nn.Conv2d(3, 4, 7, stride=2, padding=3, bias=False).to(dtype=np.float64)
sym.weight.data[...] = conv.weight.data
img = rng.standard_normal((1, 3, 224, 224))
y_tf, y_pt = conv(img), sym(img)
print("output shapes:", y_tf.shape, y_pt.shape)
print("same weights, different outputs: largest difference", float(np.abs(y_tf - y_pt).max()))
valid = nn.Conv2d(3, 4, 7, stride=2, padding=0, bias=False).to(dtype=np.float64)
valid.weight.data[...] = conv.weight.data
# "same" at stride 2 on 224 is exactly: pad 2 rows/columns before and 3 after, then a valid convolution
print("padding='same' == valid conv of the image padded (2, 3):",
      np.allclose(y_tf, valid(np.pad(img, ((0, 0), (0, 0), (2, 3), (2, 3)))), rtol=1e-12, atol=1e-12))

# %% [markdown]
# ## 3. Momentum, two conventions
#
# Keras: `moving = moving * momentum + batch * (1 - momentum)`. PyTorch: `running = (1 - momentum) *
# running + momentum * batch`. The seed's `BatchNormalization(momentum=0.9)` is PyTorch's
# `momentum=0.1`; Keras's default 0.99 is PyTorch's 0.01. Keras 3 also averages the *biased* batch
# variance, PyTorch the unbiased one. `KerasBatchNorm2d` takes Keras's number and keeps Keras's rules:

# %%
bn = tf_resnet50().bn1
print(bn)
print(f"Keras momentum {bn.keras_momentum} -> PyTorch momentum {bn.momentum:.2f}")

# %% [markdown]
# ## 4. One image, two flavours, their own weights
#
# PyTorch's ResNet-50 with torchvision's preprocessing (resize 232 or 256, crop 224, mean and std),
# Keras's ResNet50 with Keras's ("caffe": RGB to BGR, subtract the mean, no scaling). Each is
# loaded with minires's readers (no torch, no TensorFlow). `minires predict` does the same from the
# command line, choosing the preprocessing from the weights file.

# %%
from PIL import Image

from minires.predict import classify, load_pretrained

TORCH_W = ROOT / "tutorials" / "resnet50-11ad3fa6.pth"
KERAS_W = ROOT / "tutorials" / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
real = TORCH_W.exists() and KERAS_W.exists()
yy, xx = np.mgrid[0:224, 0:224]
picture = Image.fromarray(np.stack([(xx + yy) % 256, (2 * xx) % 256, (3 * yy) % 256], -1).astype(np.uint8))
if real:
    torch_model, keras_model = load_pretrained(TORCH_W), load_pretrained(KERAS_W)
else:
    print("The weight files are not here: random weights, MEANINGLESS predictions below.")
    torch_model, keras_model = resnet50().eval(), keras_resnet50(classifier_activation=None).eval()
for name, model in [("PyTorch flavour", torch_model), ("Keras flavour", keras_model)]:
    print(name, "preprocessing:", getattr(model, "preprocessing", "torchvision"))
    for idx, label, p in classify(model, [picture], topk=3)[0]:
        print(f"   {p:6.1%}  {label}")

# %% [markdown]
# ## 5. ResNet v2: keep the identity path clean
#
# In the original block the sum is followed by a ReLU: `x_{l+1} = relu(x_l + F(x_l))`. Every block
# cuts the shortcut with a nonlinearity. He et al. (2016, "Identity Mappings in Deep Residual
# Networks") move batch norm and ReLU *before* the convolutions ("pre-activation") and leave the
# sum alone: `x_{l+1} = x_l + F(x_l)`. Then `x_L = x_l + sum of the branches between`, and the
# gradient reaching block l is the gradient at block L **plus** the branches' terms: one part arrives
# unchanged, however deep the network. In `PreActBottleneck.backward` that is the last line,
# `g_x + g_short`, with no ReLU's mask in front of it.
#
# The measurement: the same random input and upstream gradient through 40 blocks of each kind at
# initialisation (training mode), and the gradient's norm as it flows back through each block.

# %%
def gradient_norms(blocks, x):
    for b in blocks:
        x = b(x)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
    norms = [np.linalg.norm(g)]
    for b in reversed(blocks):
        g = b.backward(g)
        norms.append(np.linalg.norm(g))
    return norms[::-1]           # norms[i]: the gradient at block i's input

depth, width = 40, 8
x0 = rng.standard_normal((4, 4 * width, 8, 8)).astype(np.float32)
v1 = gradient_norms([BottleneckV1(4 * width, width, conv_shortcut=False) for _ in range(depth)], x0)
v2 = gradient_norms([PreActBottleneck(4 * width, width) for _ in range(depth)], x0)
plt.figure(figsize=(7, 3.5))
plt.semilogy(v1, label="v1: relu(x + F(x))")
plt.semilogy(v2, label="v2: x + F(pre-activated x)")
plt.xlabel("block (0 = input)"); plt.ylabel("gradient norm"); plt.legend(); plt.tight_layout()
growth = {"v1": v1[0] / v1[-1], "v2": v2[0] / v2[-1]}   # the gradient's norm at the input over at the output
per_block = {k: g ** (1 / depth) for k, g in growth.items()}
print(f"Through {depth} blocks the gradient's norm grows {growth['v1']:.3g}-fold in v1 and {growth['v2']:.3g}-fold "
      f"in v2 (x{per_block['v1']:.3f} and x{per_block['v2']:.3f} per block on average): v1's growth is "
      f"{growth['v1'] / growth['v2']:.3g} times v2's.")

# %% [markdown]
# Both curves rise toward the input: every block adds its branch's gradient to the one that
# arrives through its shortcut. The difference is in how that accumulates. In v2 nothing touches
# the sum, so the gradient at any block is the output's gradient, unchanged, plus one term from
# each branch above it: the growth adds up. In v1 the gradient passes a ReLU's mask after every
# sum and then the block's two paths, and the next block down starts from the result: the
# gradient at the input is a product of one factor per block, and the growth multiplies. The
# sentence under the plot compares the two growths in your run; its per-block averages show the
# difference a product makes, a factor only a little larger per block ending many times larger
# over the whole depth. This is the 2016 paper's argument for the clean identity path, and why
# its 1001-layer net trains better as v2 than as v1.
#
# Keras's ResNet50V2, ResNet101V2 and ResNet152V2 are `keras_resnet50v2` ... in minires, with
# Keras's layer names, so Keras's weight files load into them; they want the "tf" preprocessing
# (pixels scaled to [-1, 1]).

# %% [markdown]
# ## 6. The tutorial's own files: the names TensorFlow lost
#
# A reader of the tutorial runs its TensorFlow code, trains, and calls `model.save_weights(...)`.
# `tools/seed_tf_resnet.py` is that code as written (indentation restored, nothing else changed).
# Its blocks are subclassed Keras layers, and `_make_layer` gives each one a name, `"unit_1"`,
# `"unit_2"` ... Follow the name (`<--` marks the lines that matter):

# %%
import ast

SEED = ROOT / "tools" / "seed_tf_resnet.py"
seed_lines = SEED.read_text(encoding="utf-8").splitlines()
seed = {n.name: n for n in ast.parse("\n".join(seed_lines)).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}

def show(first, last, mark=()):
    """Print lines first..last of the tutorial's code, marking those that contain a string of ``mark``."""
    for i in range(first, last + 1):
        line = seed_lines[i - 1]
        print(f"{i:4d}  {line}" + ("   <--" if any(m in line for m in mark) else ""))

init = next(n for n in seed["BasicBlock"].body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
show(init.lineno, init.end_lineno, mark=("**kwargs", "super("))
print()
show(seed["_make_layer"].lineno, seed["_make_layer"].end_lineno, mark=('name="unit_',))

# %% [markdown]
# `name="unit_1"` lands in `**kwargs`, and `super(BasicBlock, self).__init__()` is called
# without them: Keras never hears the name and names the block itself, after its class
# (`basic_block`, `basic_block_1`, ...; `bottlenect` ... in ResNet-50 and 101). BasicBlock's own
# convolutions and batch norms were given no name at all. Only layers made outside the blocks can
# keep their names: the stem's `conv1` and `conv1/BatchNorm`, the stages `block1` to `block4` (each
# a `Sequential`, a top-level layer of the model), the shortcut's `conv1` and `BatchNorm` (made in
# `_make_layer`), and `logits`. How much of that each format keeps, you will see below.
#
# `tests/fixtures/keras/tutorial/resnet34/` holds what this code wrote for a ResNet-34 with few
# classes: under TensorFlow with tf-keras (Keras 2), `save_weights("keras2.h5")` and
# `save_weights("keras2.ckpt")` (a TensorFlow checkpoint: tf-keras's format for any name not
# ending in `.h5`), and under Keras 3 (with the least edits it needs,
# `tools/seed_tf_resnet_keras3.py`) `save_weights("keras3.weights.h5")`; all xz-compressed, with
# TensorFlow's outputs in `expected.npz`. **The weights are synthetic**: nothing was trained, `tools/make_tutorial_files.py`
# set every variable (the kernels from short repeating patterns, so that they compress; the batch
# norms random), and the input is random pixels. The classes mean nothing. What counts is whether
# minires gets TensorFlow's numbers. Decompressed into a temporary folder:

# %%
import lzma
import shutil
import tempfile

import h5py

from minires.keras import tf_resnet34
from minires.keras.weights import keras_file_info, load_keras_weights, match_layers, open_keras_file
from minires.weights.tf_checkpoint import TFCheckpoint

FIXTURES = ROOT / "tests" / "fixtures" / "keras" / "tutorial" / "resnet34"
files = Path(tempfile.mkdtemp(prefix="minires-nb14-"))
for name in ("keras2.h5", "keras2.ckpt.index", "keras2.ckpt.data-00000-of-00001", "keras3.weights.h5"):
    with lzma.open(FIXTURES / f"{name}.xz") as src, open(files / name, "wb") as dst:
        shutil.copyfileobj(src, dst)
shutil.copy(FIXTURES / "checkpoint", files)       # the text file TensorFlow writes next to a checkpoint
with np.load(FIXTURES / "expected.npz") as f:
    expected = {k: f[k] for k in f.files}
classes = int(expected["num_classes"])
print(f"written by TensorFlow {expected['tensorflow_version']} with tf-keras {expected['keras2_version']}, "
      f"and by Keras {expected['keras3_version']}; a ResNet-34 with {classes} classes")
for p in sorted(files.iterdir()):
    print(f"   {p.name:34s} {p.stat().st_size:>11,} bytes")

# %% [markdown]
# **Keras 2's `.h5`.** The file's root lists the model's top-level layers in `layer_names`; each
# layer's group lists its weights in `weight_names`. The beginning of `block2`'s list, then the
# names the tutorial's code asks for in that stage's first unit (as minires spells them,
# `model.keras_layers()`):

# %%
seed34 = tf_resnet34(num_classes=classes, data_format="channels_last")
with h5py.File(files / "keras2.h5", "r") as f:
    print("layer_names:", [str(n) for n in f.attrs["layer_names"]])
    block2 = [str(n) for n in f["block2"].attrs["weight_names"]]
print(f"\nblock2's weight_names ({len(block2)} in all), the first nine:")
for n in block2[:9]:
    print("   ", n)
print("\nwhat the tutorial asked for in block2's first unit:")
for name, module in seed34.keras_layers():
    if name.startswith("block2/unit_1/"):
        print("   ", name)
print(f"\nblock2's first unit is stored as {block2[0].split('/')[0]!r}: Keras counted every BasicBlock "
      f"made before it in the session, block1's included")

# %% [markdown]
# No `unit_1`, no `conv1` inside a block; the shortcut's `conv1` and `BatchNorm` appear bare, with
# neither their `Sequential`'s name `shortcut` nor their block in front. And the counters run
# through the whole Python session: build a second model before saving, and the same layers are
# saved under other numbers.
#
# **The TensorFlow checkpoint** (`keras2.ckpt.index`, a sorted table of tensor names, dtypes,
# shapes and offsets, plus the data shard) stores no layer names at all. Each key is the path from
# the model to the variable through the objects that hold it: `layer_with_weights-N` is the N-th
# layer that holds weights (counted from 0), and inside a block the attribute names its
# `__init__` assigns (`conv1`, `bn1`, ..., `downsample`). minires reads the index and the shard
# without TensorFlow (`minires/weights/tf_checkpoint.py:TFCheckpoint`):

# %%
with TFCheckpoint(files / "keras2.ckpt") as ckpt:
    keys = list(ckpt.entries)
    print(f"{len(keys)} entries, in the index's (sorted) order; the first eight:")
    for key in keys[:8]:
        e = ckpt.entries[key]
        print(f"   {key:78s} {e.tf_dtype:8s} {list(e.shape)}")

# %% [markdown]
# The first entry is the object graph itself (a serialized description of the objects, not a
# weight); then the stem's convolution and batch norm, then the first stage (the model's next
# layer with weights) and its first block, by attribute name.
#
# **Keras 3's `.weights.h5`** names each layer after its class, counted among its siblings
# (`sequential`, `sequential_1`, ... for the stages; `basic_block`, `basic_block_1`, ... inside each),
# a block's layers by their attribute names, and a layer's variables `vars/0`, `vars/1`, ... in
# Keras's order (for a batch norm: gamma, beta, moving mean, moving variance). A top-level layer's
# own name (`block2`, `logits`) survives only as an attribute of its `vars` group, which minires
# reads and shows below.

# %%
with h5py.File(files / "keras3.weights.h5", "r") as f:
    datasets = []
    f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
print(f"{len(datasets)} datasets; the first of the first stage (h5py lists names alphabetically):")
for n in [n for n in datasets if n.startswith("layers/sequential/")][:6]:
    print("   ", n)

# %% [markdown]
# **How minires loads them anyway.** None of the three spells `block2/unit_1/conv1`. But the order
# of the layers is fixed by the code: the stem's convolution and batch norm; then stage by stage,
# unit by unit, the block's layers with weights in the order its `__init__` assigns them, `conv1`,
# `bn1`, `conv2`, `bn2` and last `downsample`, the shortcut (made earlier, in `_make_layer`, but it
# is the block's attribute `downsample`, assigned last, and every format files it there); then
# `logits`. Each format keeps that order its own way (the `.h5`'s lists, the checkpoint's
# `layer_with_weights-N` and attribute names, Keras 3's counters and attribute names), and
# `tf_resnet34`'s layers come in the same order, so minires pairs them one by one
# (`minires/keras/structure.py:match_by_tracking_order`: the order Keras tracks them).
# It checks that every pair is the same kind of layer (convolution, batch norm, dense) and then
# every shape, so a file of another depth is refused with what differs
# (`tests/test_keras_tutorial_files.py:test_a_file_of_another_depth_is_refused_saying_what_differs`).
# The model itself is told from the structure alone, by its number of convolutions:
# `keras_file_info` gives (model, classes, how the layers pair):

# %%
FILES = ["keras2.h5", "keras2.ckpt", "keras3.weights.h5"]
for name in FILES:
    print(f"{name:18s} -> {keras_file_info(files / name)}")
pairs = {}
for name in FILES:
    with open_keras_file(files / name) as (layout, layers):
        pairs[name] = {ours: theirs for ours, _, theirs, _ in match_layers(seed34, layers)}
print(f"\n{len(pairs['keras2.h5'])} layers with weights paired in each file; a few of them:")
for ours in ["conv1", "block2/unit_1/conv1", "block2/unit_1/conv1/BatchNorm", "block2/unit_1/shortcut",
             "block2/unit_1/shortcut/BatchNorm", "logits"]:
    print(f"  {ours}")
    for name in FILES:
        print(f"      {name:18s} {pairs[name][ours]}")

# %% [markdown]
# `minires predict --weights keras2.ckpt` (or the `.h5`, the `.weights.h5`, the folder) goes the same
# way and says so; `load_pretrained`, which it calls, keeps the sentence in `weights_note`:

# %%
from minires.predict import load_pretrained

print(load_pretrained(str(files / "keras2.ckpt")).weights_note)

# %% [markdown]
# **The same input through both.** Each file loaded in turn into the `tf_resnet34` above (NHWC, as
# TensorFlow; a load sets every weight and moving statistic, or raises and changes nothing), the
# fixture's two random images run in eval mode, and minires's probabilities set next to those
# TensorFlow computed when it wrote the files:

# %%
RTOL = 1e-4                      # what tests/test_keras_tutorial_files.py requires, in float32
x = expected["input"]
print("input", x.shape, x.dtype)
results = {}
for name in FILES:
    load_keras_weights(seed34, files / name).eval()
    results[name] = seed34(x), expected["probs_keras3" if name.startswith("keras3") else "probs_keras2"]
ours, theirs = results["keras2.ckpt"]
print("\nimage 0, from the checkpoint:\n   class   TensorFlow      minires")
for c in range(classes):
    print(f"   {c:5d}   {theirs[0, c]:.7f}   {ours[0, c]:.7f}")
print()
for name, (ours, theirs) in results.items():
    rel = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    print(f"{name:18s} largest relative difference (both images, every class) {rel:.1e}, "
          f"within {RTOL:g}: {rel <= RTOL}")
shutil.rmtree(files)             # the temporary folder, with the decompressed files

# %% [markdown]
# The differences are float32 rounding (the two frameworks add in other orders), on every file:
# the tutorial's readers can bring their own weights, however they saved them.
#
# ## 7. The tutorial's other slips
#
# Four more places where the tutorial's text or code says other than it means, each checked here
# from code.
#
# **Width and height, swapped.** `resnet34(im_width, im_height)` passes them on to `_resnet`,
# whose parameters come in the other order, and `_resnet` builds its `Input` from its own names:

# %%
resnet34_def, resnet_def = seed["resnet34"], seed["_resnet"]
show(resnet34_def.lineno, resnet34_def.end_lineno)
show(resnet_def.lineno, resnet_def.lineno)
inp = next(n for n in ast.walk(resnet_def) if isinstance(n, ast.Call) and ast.unparse(n.func) == "layers.Input")
show(inp.lineno, inp.lineno)

call = next(n for n in ast.walk(resnet34_def) if isinstance(n, ast.Call) and ast.unparse(n.func) == "_resnet")
passed = [ast.unparse(a) for a in call.args]          # what resnet34 hands over, in order
params = [a.arg for a in resnet_def.args.args]         # the names _resnet gives them, in order
print("\nresnet34 passes    ", passed[:4])
print("_resnet receives as", params[:4])
asked = {"im_width": 320, "im_height": 240}
inside = {param: asked.get(arg) for param, arg in zip(params, passed)}     # _resnet's view of them
shape = tuple(inside[e.id] if isinstance(e, ast.Name) else e.value
              for e in next(k.value for k in inp.keywords if k.arg == "shape").elts)
print(f"\nresnet34(im_width={asked['im_width']}, im_height={asked['im_height']}) builds Input(shape={shape});")
print(f"an NHWC image {asked['im_height']} high and {asked['im_width']} wide has the shape "
      f"{(asked['im_height'], asked['im_width'], 3)}")
for fn in ("resnet34", "resnet50", "resnet101"):
    c = next(n for n in ast.walk(seed[fn]) if isinstance(n, ast.Call) and ast.unparse(n.func) == "_resnet")
    print(f"{fn:9s} passes its (im_width, im_height) as _resnet's "
          f"{tuple(params[[ast.unparse(a) for a in c.args].index(v)] for v in ('im_width', 'im_height'))}")

# %% [markdown]
# With the default, a square 224 x 224, the swap changes nothing, which is how it survives; a
# non-square request builds the network for the transposed image, at every depth.
#
# **The parameter count of the basic block.** The text compares the two blocks on a 256-channel
# input and gives each one's number of parameters (quoted in the cell). Counted from minires's
# blocks (their convolutions' weights; notebook 6 does the same):

# %%
from minires.models.blocks import BasicBlock, Bottleneck

TEXT_BASIC, TEXT_BOTTLENECK = 1170648, 69632       # the tutorial's text, as printed there

def conv_weights(block):
    return sum(m.weight.data.size for m in block.modules() if isinstance(m, nn.Conv2d))

basic, bottleneck = conv_weights(BasicBlock(256, 256)), conv_weights(Bottleneck(256, 64))
print(f"basic block on 256 channels: the text {TEXT_BASIC:,}, counted {basic:,} "
      f"(= 2 x 3 x 3 x 256 x 256 = {2 * 3 * 3 * 256 * 256:,})")
print(f"bottleneck on 256 channels:  the text {TEXT_BOTTLENECK:,}, counted {bottleneck:,}")
print("the text right:", {"basic block": TEXT_BASIC == basic, "bottleneck": TEXT_BOTTLENECK == bottleneck},
      "; digits that differ (text, count):", [(a, b) for a, b in zip(str(TEXT_BASIC), str(basic)) if a != b])

# %% [markdown]
# The basic block's figure is a typo (a digit), the bottleneck's is right.
#
# **`resnet50_32x8d` is a ResNeXt-101.** The tutorial's PyTorch half (its text, indentation
# restored; this code is not in minires's repository, so it is copied here):

# %%
import inspect
import re
import textwrap

from minires.models import resnext50_32x4d, resnext101_32x8d

TUTORIAL_32X8D = '''
def resnet50_32x8d(num_classes=1000, include_top=True):
    # https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth
    groups = 32
    width_per_group = 8
    return ResNet(Bottleneck, [3, 4, 23, 3],
                  num_classes=num_classes,
                  include_top=include_top,
                  groups=groups,
                  width_per_group=width_per_group)
'''

def resnet_call(source):
    """(block, stage sizes, groups, width per group, layers with weights) of the ResNet(...) a function returns."""
    tree = ast.parse(textwrap.dedent(source))
    values = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
              and isinstance(n.value, ast.Constant) for t in n.targets}
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "ResNet")
    kw = {k.arg: k.value.value if isinstance(k.value, ast.Constant) else values.get(ast.unparse(k.value))
          for k in call.keywords if k.arg}
    block, stages = ast.unparse(call.args[0]), ast.literal_eval(call.args[1])
    depth = 1 + {"BasicBlock": 2, "Bottleneck": 3}[block] * sum(stages) + 1     # stem + blocks + classifier
    return block, stages, kw.get("groups", 1), kw.get("width_per_group", 64), depth

print(TUTORIAL_32X8D.strip())
print("\nits comment's file:", re.search(r"models/(\S+)", TUTORIAL_32X8D).group(1))
print(f"\n{'':30s} block, stages, groups, width per group, layers with weights")
print(f"{'the tutorial, resnet50_32x8d':30s}", resnet_call(TUTORIAL_32X8D))
for fn in (resnext101_32x8d, resnext50_32x4d):
    print(f"{'minires, ' + fn.__name__:30s}", resnet_call(inspect.getsource(fn)))
print("\nthe tutorial's resnet50_32x8d == minires's resnext101_32x8d:",
      resnet_call(TUTORIAL_32X8D) == resnet_call(inspect.getsource(resnext101_32x8d)))

# %% [markdown]
# Its stages are ResNeXt-101's, argument for argument (and the checkpoint its comment names is
# ResNeXt-101's); a 50-layer 32x8d would be `ResNet(Bottleneck, [3, 4, 6, 3], groups=32,
# width_per_group=8)`, which neither the tutorial nor torchvision publishes.
#
# **"ResNet151".** The text lists "ResNet18/34/50/101/151" where it means 152 (a few paragraphs
# earlier it says ResNet152). There is no ResNet-151: the paper's ImageNet networks are the ones
# minires builds, and none can have 151 layers:

# %%
from minires.models import MODELS

imagenet = [n for n, f in MODELS.items()
            if f.__module__ == "minires.models.resnet" and re.fullmatch(r"resnet\d+", n)]
print("minires's ImageNet ResNets:", imagenet)
print("their layers with weights: ", [resnet_call(inspect.getsource(MODELS[n]))[-1] for n in imagenet])
for block, per_block in (("BasicBlock", 2), ("Bottleneck", 3)):     # depth = stem + per_block x blocks + classifier
    blocks = (151 - 2) / per_block
    print(f"151 layers of {block}s: (151 - 2) / {per_block} = {blocks:.2f} blocks, "
          f"a whole number: {blocks.is_integer()}")
