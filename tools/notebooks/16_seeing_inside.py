# Source of tutorials/16_seeing_inside.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 16. Seeing inside: feature maps, saliency and Grad-CAM
#
# A trained network answers "this is a 7". This chapter asks *where* it looked, with three tools
# that need nothing but the forward and backward you already wrote (`minires.explain`):
#
# 1. **feature maps**: what one layer computed, caught with a forward hook;
# 2. **saliency**: the gradient of the class score with respect to the input pixels;
# 3. **Grad-CAM**: the last stage's feature maps, weighed by the gradient that reached them,
#    derived here step by step from one backward;
# 4. a **sanity check**: a map that does not change when the weights do explains nothing
#    (Adebayo et al., 2018);
# 5. where these pictures mislead.
#
# We train a ResNet-20 on the 8x8 digits for a few epochs first, so there is something to explain.

# %%
import os
import tempfile

import numpy as np

from minires import explain
from minires.data import load_dataset
from minires.nn import manual_seed, no_grad, softmax
from minires.predict.trained import load_trained
from minires.train import fit
from minires.viz import plot_filters, pyplot

plt = pyplot()
out = os.path.join(tempfile.mkdtemp(), "digits-run")
history = fit("resnet20", "digits", out=out, epochs=4, batch_size=256, seed=0, progress=False, plot=False)
model, info = load_trained(os.path.join(out, "best.npz"))      # eval mode, with its classes and statistics

_, test = load_dataset("digits")
images = (test.images - info["mean"].reshape(1, -1, 1, 1)) / info["std"].reshape(1, -1, 1, 1)
with no_grad():
    accuracy = float((model(images).argmax(axis=1) == test.labels).mean())
print(f"test accuracy after {len(history)} epochs: {accuracy:.1%}")

# %% [markdown]
# ## 1. Feature maps: what a layer computed
#
# The first convolution has 16 filters of 3x3 pixels over the one grey channel. Each slides over
# the image and gives one **feature map**: a picture of where its pattern (an edge, a bright spot,
# a corner) occurs. Here are the filters, then their maps on one test digit.

# %%
plot_filters(model.conv1.weight.data);

# %%
x = images[:1]                                                  # one digit, (1, 1, 8, 8)
maps = explain.feature_maps(model, x, "conv1")                  # (1, 16, 8, 8): one map per filter
print("digit", test.labels[0], "->", maps.shape)
fig, axes = plt.subplots(2, 9, figsize=(11, 2.6))
axes[0, 0].imshow(test.images[0, 0], cmap="gray")
axes[0, 0].set_title("input")
for ax, m in zip(axes.flat[1:], maps[0]):
    ax.imshow(m, cmap="viridis")
for ax in axes.flat:
    ax.axis("off")
plt.show()

# %% [markdown]
# `feature_maps` is a **forward hook** (minires/nn/hooks.py): a function the module calls after
# its forward with `(module, inputs, output)`. Deeper layers have more channels and fewer pixels:
# a stage halves the resolution and doubles the channels.

# %%
for layer in ("conv1", "layer1", "layer2", "layer3"):
    print(f"{layer:8s}", explain.feature_maps(model, x, layer).shape)

# %% [markdown]
# ## 2. Saliency: the gradient with respect to the input
#
# Let $s_t$ be the score (before the softmax) of class $t$. The **saliency** of a pixel is
# $\max_c |\partial s_t / \partial x_{c,i,j}|$ (Simonyan et al., 2013): how much a small change of
# that pixel would move the score. No autograd is needed: `model.backward` started from a one-hot
# gradient on the scores gives $\partial s_t / \partial x$ -- the same backward that trains the net,
# run for one class score instead of the loss.

# %%
with explain.explaining(model):              # eval mode, gradients kept, the model given back as it was
    scores = model(x)
    t = int(scores.argmax())
    one_hot = np.zeros_like(scores)
    one_hot[0, t] = 1
    dx = model.backward(one_hot)
by_hand = np.abs(dx).max(axis=1)
print("class", t, "| the same as explain.saliency:", np.allclose(by_hand, explain.saliency(model, x)))

# %%
some = images[:6]
sal = explain.saliency(model, some)
fig, axes = plt.subplots(2, 6, figsize=(10, 3.6))
for k in range(6):
    axes[0, k].imshow(test.images[k, 0], cmap="gray")
    axes[0, k].set_title(f"digit {test.labels[k]}")
    axes[1, k].imshow(sal[k], cmap="hot")
for ax in axes.flat:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. Grad-CAM, from the backward
#
# Saliency is noisy: one pixel's gradient says little. **Grad-CAM** (Selvaraju et al., 2017) looks
# at the last stage instead, whose maps $A_k$ (channel $k$, at low resolution) already mean
# "a stroke like this is here". It asks how much each channel matters for class $t$ -- the mean of
# the gradient over the map --
#
# $$\alpha_k = \frac{1}{hw}\sum_{i,j} \frac{\partial s_t}{\partial A_k[i,j]},\qquad
#   \text{cam} = \mathrm{ReLU}\Big(\sum_k \alpha_k A_k\Big)$$
#
# and keeps only what speaks *for* the class (the ReLU). Two hooks give both ingredients: a forward
# hook keeps $A$, a **backward hook** `fn(module, grad_input, grad_output)` keeps
# $\partial s_t/\partial A$ as it passes the layer on its way back to the input.

# %%
layer = explain.default_layer(model)                             # 'layer3': the last stage
kept = {}
module = explain.find_layer(model, layer)
with explain.explaining(model) as handles:                      # the hooks it is given are removed after
    handles.append(module.register_forward_hook(lambda m, inputs, out: kept.update(A=out.copy())))
    handles.append(module.register_full_backward_hook(lambda m, g_in, g_out: kept.update(dA=g_out[0].copy())))
    scores = model(x)
    one_hot = np.zeros_like(scores)
    one_hot[0, int(scores.argmax())] = 1
    model.backward(one_hot)
A, dA = kept["A"], kept["dA"]
alpha = dA.mean(axis=(2, 3), keepdims=True)                      # (1, C, 1, 1): how much each channel matters
cam = np.maximum((alpha * A).sum(axis=1), 0)                     # (1, h, w)
print(layer, "A", A.shape, "dA", dA.shape, "cam", cam.shape)
print("the same as explain.grad_cam:", np.allclose(cam, explain.grad_cam(model, x)))

# %% [markdown]
# The map has the last stage's resolution (its shape is printed above). `explain.upsample`
# stretches it (bilinear) to the image, `explain.overlay` draws it as a heat map over the digit. An earlier,
# finer layer can be named instead: `layer=`.

# %%
fig, axes = plt.subplots(3, 6, figsize=(10, 5.4))
for row, name in enumerate(("layer3", "layer2", "layer1")):
    cams = explain.grad_cam(model, some, layer=name)
    for k in range(6):
        axes[row, k].imshow(explain.overlay(test.images[k, 0], cams[k]), interpolation="nearest")
        axes[row, k].set_title(f"{test.labels[k]}, {name}", fontsize=9)
        axes[row, k].axis("off")
plt.show()

# %% [markdown]
# The same from the command line, for any image and any model `minires predict` loads:
#
# ```
# minires explain my_digit.png --checkpoint runs/.../best.npz              # writes my_digit-gradcam.png
# minires explain cat.jpg --weights resnet50-0676ba61.pth --target 281 --out cat-tabby.png
# ```
#
# ## 4. A sanity check: do the maps depend on the weights?
#
# A map that looks just as convincing for a network with *random* weights says more about the
# image than about the network: an edge detector would draw it too. Adebayo et al. (2018) call
# this the model-randomisation test. We build the same ResNet-20 with fresh random weights and
# compare its maps with the trained net's, by the rank correlation of their pixels (1: the same
# ordering of pixels, 0: unrelated).

# %%
from minires.models import resnet20


def rank_correlation(a, b):
    """Spearman's: the correlation of the ranks of a's and b's entries."""
    ra, rb = np.argsort(np.argsort(a.ravel())), np.argsort(np.argsort(b.ravel()))
    return float(np.corrcoef(ra, rb)[0, 1])


manual_seed(1)
random_net = resnet20(num_classes=10, in_channels=1).eval()
methods = {"saliency": explain.saliency,
           "Grad-CAM (layer2)": lambda m, v: explain.grad_cam(m, v, layer="layer2")}
for method, fn in methods.items():
    trained_maps, random_maps = fn(model, some), fn(random_net, some)
    r = np.mean([rank_correlation(trained_maps[k], random_maps[k]) for k in range(len(some))])
    print(f"{method:18s} trained vs random weights: mean rank correlation {r:+.2f}")
pixels = np.mean([rank_correlation(explain.saliency(model, some)[k], test.images[k, 0]) for k in range(6)])
print(f"{'saliency':18s} trained net vs the image itself: mean rank correlation {pixels:+.2f}")

# %% [markdown]
# Read the numbers above: a correlation near 1 between the trained and the random net would mean
# the map ignores what was learned. The last line compares the saliency with the image itself: a
# map close to the image's own brightness is partly an edge detector, whatever the weights.
#
# ## 5. Where these pictures mislead
#
# - **They show where, not what.** A red blob on the digit's loop says the loop mattered, not that
#   the net "sees a loop"; the story is ours.
# - **Resolution.** Grad-CAM is as coarse as its layer: a few cells here, 7x7 for an ImageNet
#   ResNet at 224 pixels. The bilinear upsampling draws smooth shapes the network never computed.
# - **Gradients are local.** Saliency is a derivative at one point: a saturated ReLU or a score
#   already at its maximum gives a small gradient for a pixel that matters a lot.
# - **The ReLU and the mean.** Grad-CAM drops evidence *against* the class, and averaging the
#   gradient over the map can cancel channels whose gradient changes sign.
# - **Normalised pictures.** `overlay` divides each map by its maximum, so a map of tiny values
#   looks as confident as a strong one; compare raw maps (`grad_cam` returns them unnormalised).
# - **Sanity checks first.** Before trusting a method, check that its maps change when the weights
#   are randomised (section 4) and when the labels the net was trained on are shuffled.
#
# Try it: explain a digit for a class it is *not* (`target=`), or a misclassified test digit, and
# see where the evidence for the wrong answer lies.
