# Source of tutorials/08_training_digits.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 8. Training a ResNet on the digits
#
# Everything so far was one forward and one backward. Training repeats them: a mini-batch goes
# forward, the loss's gradient comes back through every layer, and SGD moves each weight a
# little against its gradient. `minires.train.fit` does exactly that (its whole step is five
# lines, shown in the docstring of `minires/train/loop.py` and run by `minires/train/epoch.py:train_step`),
# measures a held-out validation set after every epoch, keeps the best epoch's weights, measures
# the test set once at the end, and keeps a run folder with the configuration, the metrics and
# the checkpoints.
#
# The data are scikit-learn's 8x8 handwritten digits (1,797 images, offline), small enough to
# train a real ResNet on a laptop CPU in seconds. In this notebook you will
#
# 1. look at the data and how it is batched;
# 2. train the paper's ResNet-20 (its CIFAR-10 network, 0.27 M parameters) for a few epochs;
# 3. see why a run needs three sets of images: training, validation and test;
# 4. plot the learning curves, and reload the trained network from its checkpoint;
# 5. look at what it gets wrong: the misclassified test images and the confusion matrix.

# %%
%matplotlib inline
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from minires.data import batches, load_dataset
from minires.train import Run, evaluate, fit, make_config
from minires.viz import confusion_matrix, format_confusion, plot_confusion, plot_curves, plot_misclassified

train_set, test_set = load_dataset("digits")
print(train_set)
print(test_set)

# %% [markdown]
# ## The data
#
# Each image is $1 \times 8 \times 8$: one channel, each pixel the number of inked cells of a
# 4x4 block of the original 32x32 scan, scaled to $[0, 1]$. The split is stratified (every
# digit keeps its share in both halves) and fixed, so every run starts from the same training
# and test images (counted above); a run then holds part of its training images out, as
# "Three sets of images" below explains.

# %%
fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for ax, i in zip(axes.flat, range(20)):
    ax.imshow(train_set.images[i, 0], cmap="gray_r")
    ax.set_title(train_set.classes[train_set.labels[i]], fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# A batch is a float32 array $(B, 1, 8, 8)$, normalised with the training set's mean and
# standard deviation, and the labels $(B,)$:

# %%
x, y = next(iter(batches(train_set, 64, rng=0)))
print("x", x.shape, x.dtype, f"mean {x.mean():.3f} std {x.std():.3f}")
print("y", y.shape, y.dtype, y[:16])

# %% [markdown]
# ## Training
#
# ResNet-20 is $6n + 2 = 20$ layers with $n = 3$ basic blocks in each of three stages (16, 32
# and 64 channels). On an 8x8 input the stages see 8x8, 4x4 and 2x2 maps. The settings below
# are `minires train`'s defaults except for the number of epochs: SGD with momentum 0.9, weight
# decay $5 \cdot 10^{-4}$, a learning rate of 0.1 that follows a cosine down to 0, batches of 64.
# `callback` is called after every step; here it keeps each mini-batch's loss.
#
# (The same run from a terminal: `minires train --epochs 6 --out runs/digits`.)

# %% [markdown]
# The learning rate over a run for each schedule `minires train` offers, from
# `minires.train.optim.make_schedule` itself (`draw_lr_schedules`); this run uses the cosine.

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_lr_schedules();

# %%
out = os.path.join(tempfile.mkdtemp(), "digits-run")
step_losses = []
history = fit("resnet20", "digits", out=out, epochs=6, batch_size=64, lr=0.1, seed=0,
              progress=False, plot=False, callback=lambda step, loss: step_losses.append(loss))

# %% [markdown]
# Each line is one epoch: the training loss and accuracy are averaged over the epoch's
# mini-batches (in training mode, while the weights were still changing); the validation
# numbers are measured at the end of the epoch, in evaluation mode (batch norm using its
# running statistics).
#
# ## Three sets of images
#
# Which epoch should we keep? The one that does best on images it has not trained on. But if
# we choose it by the *test* accuracy, the test set has helped choose the network, and the
# test accuracy of the choice is no longer a fair estimate: among several epochs, the one that
# looks best on 360 images is partly the one that was lucky on them. So `fit` holds out part
# of the training set, the **validation set** (`val_fraction=0.1` by default: 10% of each
# class, chosen with the run's seed), measures it after every epoch, keeps the epoch with the
# best validation accuracy in `best.npz`, and measures the **test set once**, at the end, for
# that checkpoint alone. (The paper does the same on CIFAR-10: 45k images to train, 5k to
# validate.)

# %%
run = Run(make_config(model="resnet20", data="digits"))
print(f"training {len(run.train_set)}, validation {len(run.val_set)}, test {len(run.test_set)} images")
print("validation images per class:", run.val_set.class_counts())
print("history.test:", history.test)

# %% [markdown]
# The run folder holds what `fit` wrote. `metrics.csv` has a row per epoch, and the test
# numbers in one row only, the chosen epoch's:

# %%
for name in sorted(os.listdir(out)):
    print(f"{name:12} {os.path.getsize(os.path.join(out, name)):>9,} bytes")
print(open(os.path.join(out, "metrics.csv")).read())

# %% [markdown]
# ## Curves
#
# `plot_curves` draws the history per epoch (it also writes `curves.png` for a run folder),
# the kept epoch as a dashed line and the test set's one measurement as a star; the loss of
# every mini-batch shows how noisy a single step is, and how fast the first epoch goes.

# %%
plot_curves(history, title="ResNet-20 on the digits", test=history.test)
plt.show()

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(np.arange(1, len(step_losses) + 1), step_losses, lw=0.8)
ax.set(xlabel="step", ylabel="mini-batch loss", yscale="log", title="every step's loss")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## The trained network
#
# `fit` returns the history, not the network: the network is in the checkpoints. `best.npz`
# holds the weights of the epoch with the best validation accuracy, `last.npz` the last one
# (with the optimizer's state, to resume). A `Run` rebuilds everything from the saved
# configuration, and `load` puts the weights back; measured on the test set, `best.npz` gives
# what `history.test` says:

# %%
meta = run.load(os.path.join(out, "best.npz"))
loss, acc, preds, labels = evaluate(run.model, run.test_loader)
print(f"best.npz (epoch {meta['position']['epoch']}): test loss {loss:.4f}, accuracy {acc:.2%} "
      f"({int((preds != labels).sum())} of {len(labels)} wrong)")
print(f"history.test: epoch {history.test['epoch']}, accuracy {history.test['test_acc']:.2%}")

# %% [markdown]
# ## What it gets wrong
#
# The test images it misclassifies, titled "true -> predicted". At 8x8 pixels, some are hard
# for a person too.

# %%
plot_misclassified(test_set.images, labels, preds, test_set.classes, max_images=16)
plt.show()

# %% [markdown]
# The confusion matrix counts, for each true class (a row), how often each class was predicted
# (a column): the diagonal is right, everything off it is a mistake, and which cell it lands in
# says which digits the network confuses.

# %%
matrix = confusion_matrix(labels, preds, test_set.num_classes)
print(format_confusion(matrix, test_set.classes))
plot_confusion(matrix, test_set.classes, title=f"ResNet-20, digits test set: {acc:.2%}")
plt.show()

# %% [markdown]
# Per class, the recall (the diagonal over the row's total) shows which digits are hardest:

# %%
recall = np.diag(matrix) / matrix.sum(axis=1)
for c, r in zip(test_set.classes, recall):
    print(f"digit {c}: {r:6.1%}  " + "#" * int(round(40 * r)))

# %% [markdown]
# **Try it**: train longer (`epochs=30` is the command's default, about a minute), a plain net of the same depth (`"plain20"`), or a much deeper
# one (`"resnet56"`). Notebook 9 compares plain and residual nets of two depths properly,
# with the same batches and the same budget of steps.
