# Source of tutorials/11_published_weights.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 11. Published weights
#
# torchvision publishes ResNets trained on ImageNet as `.pth` files written by `torch.save`.
# minires builds its models with torchvision's layer names and shapes (notebook 6), so those
# weights load into a minires model name for name, and classify images with NumPy alone: no
# torch needed. In this notebook you will
#
# 1. read a weights file and look at what it holds;
# 2. load it into a ResNet-18 and classify an image, with torchvision's preprocessing;
# 3. see why a `.pth` file must not be opened with plain `pickle`, and what minires's loader
#    refuses.
#
# **The real file.** ResNet-18's ImageNet weights are
# [resnet18-f37072fd.pth](https://download.pytorch.org/models/resnet18-f37072fd.pth)
# (45 MB). Put it in this folder (`tutorials/`) and this notebook uses it. Without it (as in the
# test run, which has no internet), the notebook makes a stand-in: a freshly initialised
# minires ResNet-18 saved as safetensors. Everything runs the same way, but **the stand-in's
# predictions are meaningless**: its weights are random.

# %%
%matplotlib inline
import os
import pickle
import pickletools
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minires import nn
from minires.models import resnet18
from minires.predict import classify, load_pretrained
from minires.predict.preprocess import load_image, preprocess_imagenet
from minires.weights import WeightsError, detect_format, load_weights, save_weights

# The repository's root: the first folder, from here upwards, that holds tests/fixtures. The
# notebook runs from tutorials/ or from the book's docs/chapters/, and paths built from ROOT
# work from both.
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tests" / "fixtures").is_dir())
print("repository root:", ROOT)

REAL = ROOT / "tutorials" / "resnet18-f37072fd.pth"
if REAL.exists():
    weights, real = REAL, True
    print(f"using the published weights {REAL.name}")
else:
    nn.manual_seed(0)
    weights, real = os.path.join(tempfile.mkdtemp(), "resnet18-random.safetensors"), False
    save_weights(weights, resnet18().state_dict())
    print(f"{REAL.name} is not in tutorials/: using a stand-in, {os.path.basename(weights)}, a randomly\n"
          "initialised ResNet-18. Its predictions below are MEANINGLESS (the weights were never trained).")

# %% [markdown]
# ## What a weights file holds
#
# A state dict: an ordered mapping from a layer's dotted name to an array. `load_weights`
# recognises the format from the file's first bytes (a zip archive from `torch.save`, an old
# pickle, safetensors or npz) and returns NumPy arrays whatever wrote it.

# %%
state = load_weights(weights)
print(f"{detect_format(weights)}: {len(state)} arrays, "
      f"{sum(a.size for a in state.values()):,} numbers")
for name in list(state)[:7] + ["layer2.0.downsample.0.weight", "fc.weight", "fc.bias"]:
    print(f"  {name:32} {str(state[name].shape):18} {state[name].dtype}")

# %% [markdown]
# The names are torchvision's: `layer2.0.downsample.0.weight` is the 1x1 projection shortcut
# of the first block of stage 2. A minires ResNet-18 has exactly these names and shapes, so
# loading is a copy, checked name by name. (Batch norm's `num_batches_tracked`, in torch files,
# is an integer count minires keeps too.)

# %%
model = resnet18()
theirs, ours = set(state), set(model.state_dict())
print("names only in the file:", sorted(theirs - ours), " only in the model:", sorted(ours - theirs))

# %% [markdown]
# The stand-in is a safetensors file. A file written by `torch.save` is a zip archive holding a
# pickle (`data.pkl`, the dictionary's structure) and one raw file per tensor (`data/0`,
# `data/1` ...). The tests keep a small one made by PyTorch itself, a CIFAR ResNet-20, and it
# reads the same way:

# %%
import zipfile

TORCH_FILE = ROOT / "tests" / "fixtures" / "predict" / "resnet20-cifar.pth"
print(detect_format(TORCH_FILE), zipfile.ZipFile(TORCH_FILE).namelist()[:5], "...")
small = load_weights(TORCH_FILE)
print(f"{len(small)} arrays, e.g. layer3.0.conv1.weight {small['layer3.0.conv1.weight'].shape}, "
      f"fc.weight {small['fc.weight'].shape}")

# %% [markdown]
# `load_pretrained` does it all: it guesses the model from the file name (`resnet18-...`),
# reads the number of classes from `fc.weight`, loads strictly (a missing, extra or mis-shaped
# array is an error that lists them) and returns the model in evaluation mode.

# %%
model = load_pretrained(weights)
print(type(model).__name__, "training mode:", model.training, " classes:", model.fc.out_features)

# %% [markdown]
# ## Classifying an image
#
# The network was trained on images preprocessed one way, and must see them the same way:
# torchvision's evaluation transform resizes the shorter side to 256, cuts out the central
# 224x224, scales to $[0, 1]$ and normalises each channel with ImageNet's mean and standard
# deviation. `preprocess_imagenet` does this with Pillow and NumPy. Our image is the small
# synthetic picture from the tests (any photo will do: `load_image("cat.jpg")`).

# %%
IMAGE = ROOT / "tests" / "fixtures" / "predict" / "image.png"
image = load_image(IMAGE)
x = preprocess_imagenet(image)
print("image", image.size, image.mode, "-> network input", x.shape, x.dtype)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(6, 3))
ax1.imshow(image)
ax1.set_title(f"the image, {image.size[0]}x{image.size[1]}")
shown = x[0].transpose(1, 2, 0)
ax2.imshow((shown - shown.min()) / (shown.max() - shown.min()))
ax2.set_title("what the network sees, 224x224")
for ax in (ax1, ax2):
    ax.axis("off")
plt.show()

# %%
top = classify(model, [IMAGE], topk=5)[0]
print("top 5" + ("" if real else "   (random weights: MEANINGLESS, only the mechanics are real)"))
for rank, (index, name, p) in enumerate(top, 1):
    print(f"  {rank}. {p:7.2%}  {name}  ({index})")

# %% [markdown]
# With random weights the ranking is noise: another seed gives other classes. With the real
# file and a real photo, the first class usually gets most of the probability.
# From a terminal, the same thing is one command:
#
# ```bash
# minires predict cat.jpg --weights resnet18-f37072fd.pth
# ```
#
# (`--model` when the file name does not start with the model's name; the V2 weights of
# ResNet-50 and others, e.g. `resnet50-11ad3fa6.pth`, are resized to 232 instead of 256, and
# minires knows them by the hash in the name.)
#
# ## Why not simply `pickle.load`?
#
# A `.pth` file is a zip archive around a Python pickle, and a pickle is a small program: it can
# name any Python function and call it while it loads. Here is a "weights file" whose loading
# would run a shell command:

# %%
class Payload:
    def __reduce__(self):                      # pickle stores "call os.system('...')" for this object
        return (os.system, ("echo this file just ran a command on your machine",))


evil = os.path.join(tempfile.mkdtemp(), "resnet18-evil.pth")
with open(evil, "wb") as f:
    pickle.dump({"fc.weight": Payload()}, f, protocol=2)
pickletools.dis(open(evil, "rb").read())

# %% [markdown]
# `GLOBAL 'posix system'` then `REDUCE`: unpickling calls `os.system` (`posix` is its real
# module on Linux) with the string. `pickle.load(open(evil, "rb"))` would run it; we do not.
# minires reads torch files with an allow-list unpickler that answers only the handful of
# names a state dict needs (the rule `torch.load(weights_only=True)` follows), so the same file
# is refused before anything runs:

# %%
try:
    load_weights(evil)
except WeightsError as e:
    print("refused:", e)

# %% [markdown]
# safetensors files (what `save_weights` writes for a `.safetensors` name) cannot carry code at
# all: a JSON header of names, shapes and offsets, then raw numbers.
#
# **Try it**: download `resnet18-f37072fd.pth` into this folder and run the notebook again with
# a photo of your own; or `resnet50-11ad3fa6.pth` with `load_pretrained(...)` (80.9% top-1 on
# ImageNet).
