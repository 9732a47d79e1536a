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
# 5. meet ResNet v2, the pre-activation network, and watch its gradients at depth next to v1's.
#
# **Weights.** With torchvision's `resnet50-11ad3fa6.pth` and Keras's
# `resnet50_weights_tf_dim_ordering_tf_kernels.h5` in this folder, section 4 uses them. Without
# them (as in the test run, which has no internet) both models keep random weights and **their
# predictions are meaningless**; everything else runs the same way.

# %%
%matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np

from minires import nn
from minires.models import keras_resnet50, resnet50, tf_resnet50
from minires.models.preact import BottleneckV1, PreActBottleneck
from minires.nn.padding import same_padding

nn.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. NCHW and NHWC
#
# PyTorch stores a batch as (N, C, H, W): each channel a contiguous image. TensorFlow as
# (N, H, W, C): each pixel's channels side by side. minires's layers take NCHW; a Keras-flavoured
# model built with `data_format="channels_last"` takes NHWC, and gives its input gradient back
# in NHWC. What does that cost? The model only *transposes views* at its two ends: inside,
# activations are stored channel-major either way (`minires/nn/memory.py`), and the stem's
# padding writes a fresh copy in that order, a copy the NCHW path makes too.

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

TORCH_W, KERAS_W = "resnet50-11ad3fa6.pth", "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
real = os.path.exists(TORCH_W) and os.path.exists(KERAS_W)
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
print(f"gradient norm at the input / at the output: v1 {v1[0] / v1[-1]:.3g}, v2 {v2[0] / v2[-1]:.3g}")

# %% [markdown]
# Read the two curves, and the ratios printed under them, for what your run shows: the v1 curve
# is shaped by a ReLU mask at every block, while v2's identity path carries the output's gradient
# to every depth and each branch adds to it. Keras's ResNet50V2, ResNet101V2 and ResNet152V2 are
# `keras_resnet50v2` ... in minires, with Keras's layer names, so Keras's weight files load into
# them; they want the "tf" preprocessing (pixels scaled to [-1, 1]).
