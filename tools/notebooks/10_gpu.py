# Source of tutorials/10_gpu.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 10. The same code on a GPU
#
# CuPy is NumPy's twin on NVIDIA GPUs: `cupy.zeros`, `cupy.matmul`, `a.reshape`, slicing ...
# behave as NumPy's, but the arrays live in GPU memory and every operation runs there. minires
# never writes `np.` on data inside a layer. Each operation asks its inputs which library they
# belong to, `xp = xp_of(x)`, and calls `xp.matmul` or `xp.zeros`; so the layer code you have
# read in notebooks 1 to 5 runs unchanged on either. In this notebook you will
#
# 1. see the switch (`minires.backend`) and where it shows in a layer;
# 2. move a ResNet and a batch to the GPU with `model.to("cuda")` and `to_device`;
# 3. train and compare speeds, and meet the errors you get when mixing devices.
#
# On a machine without a GPU (or without CuPy: `pip install cupy-cuda12x` for CUDA 12,
# `cupy-cuda13x` for CUDA 13), every cell still runs, on the CPU, and says so.

# %%
import inspect
import time

import numpy as np

import minires
from minires import nn, to_device, to_numpy, xp_of
from minires.backend import DeviceError, device_of, gpu_available, why_no_gpu
from minires.data import batches, load_dataset
from minires.models import resnet20

GPU = gpu_available()
device = "cuda" if GPU else "cpu"
if GPU:
    import cupy
    print(f"GPU found: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cupy.__version__}. "
          "The cells below run on it.")
else:
    print(f"NO GPU HERE: {why_no_gpu()}.\n"
          "Every cell below runs on the CPU with NumPy: device = 'cpu'. On a machine with an NVIDIA GPU\n"
          "and CuPy, run this notebook again: the same cells then run on the GPU.")

# %% [markdown]
# ## The switch
#
# `xp_of` returns the module an array belongs to, `numpy` or `cupy`; `to_device(a, "cuda")`
# copies an array to the GPU and `to_numpy(a)` (or `to_device(a, "cpu")`) copies it back.
# That is the heart of `minires/backend.py` (`minires/backend.py:xp_of`, printed here):

# %%
print(inspect.getsource(xp_of))
a = np.arange(6, dtype=np.float32).reshape(2, 3)
b = to_device(a, device)
print(f"a: {type(a).__module__}.{type(a).__name__} on {device_of(a)};  "
      f"b: {type(b).__module__}.{type(b).__name__} on {device_of(b)};  xp_of(b) is {xp_of(b).__name__}")
print("(b @ b.T) back on the CPU:\n", to_numpy(b @ b.T))

# %% [markdown]
# In a layer, the switch is one line. `ReLU.forward` checks its input and hands it to the
# textbook function `minires/nn/activation.py:relu_forward` (or to the engine's fast path, which
# saves memory and asks `xp_of` the same way); that function asks its input for its module and
# calls that module's `maximum`. `Conv2d.forward` does the same with
# `minires/nn/conv.py:conv_forward`, whose lines with `xp` are printed last: the module is asked
# once, and the im2col matrix times the filters (notebook 1) is `xp.matmul`.

# %%
from minires.nn.activation import relu_forward
from minires.nn.conv import conv_forward

print(inspect.getsource(nn.ReLU.forward))
print(inspect.getsource(relu_forward))
xp_lines = [line for line in inspect.getsource(conv_forward).splitlines() if "xp" in line]
assert xp_lines, "conv_forward no longer uses xp: update this cell and its text"
print("conv_forward, its lines with xp:")
print("\n".join(xp_lines))

# %% [markdown]
# The same line, given a NumPy array and (where there is a GPU) a CuPy one: `xp_of(x)` names the
# module, and `relu_forward` returns an array of that module, computed where the input lives.

# %%
for where in ["cpu", "cuda"] if GPU else ["cpu"]:
    xd = to_device(np.array([-1.5, 0.0, 2.0], dtype=np.float32), where)
    y, mask = relu_forward(xd)
    print(f"x on {where}: xp_of(x) is {xp_of(xd).__name__}, so the line calls {xp_of(xd).__name__}.maximum; "
          f"relu_forward(x) gives a {type(y).__module__}.{type(y).__name__} on {device_of(y)}: {to_numpy(y)}")
if not GPU:
    print("x on cuda: not run here (no GPU). Given a CuPy array, xp_of(x) is cupy, the same line calls\n"
          "cupy.maximum, and the result is a cupy.ndarray in GPU memory; no line of relu_forward changes.")

# %% [markdown]
# `x > 0`, `x.reshape`, `x.transpose` and `@` are methods and operators of the array itself,
# so they need no `xp` at all: a CuPy array does them on the GPU. The few places where NumPy and
# CuPy differ would be decided in `backend.py`, in one place; the layers only ever see `xp`.
#
# ## A model on the GPU
#
# `model.to("cuda")` replaces every parameter, gradient and buffer (batch norm's running
# statistics) by a GPU copy; `model.to("cpu")` brings them back. A `DataLoader` built with
# `device="cuda"` copies each batch over (as uint8 where it can, four times less to copy than
# float32).

# %%
nn.manual_seed(0)
model = resnet20(num_classes=10, in_channels=1).to(device)
train_set, test_set = load_dataset("digits")
x, y = next(iter(batches(train_set, 256, rng=0, device=device)))
criterion = nn.CrossEntropyLoss()

loss = criterion(model(x), y)
model.zero_grad()
model.backward(criterion.backward())
p = model.conv1.weight
print(f"batch on {device_of(x)}, conv1.weight on {device_of(p.data)}, its gradient on {device_of(p.grad)}")
print(f"loss {float(loss):.4f}; |grad conv1| = {float(xp_of(p.grad).linalg.norm(p.grad)):.4f}")

# %% [markdown]
# Nothing else changes: the training loop of notebook 8 is the same with `device="cuda"`
# (`fit(..., device="cuda")`, or `minires train --device cuda`).
#
# ## Mixing devices is an error, not a silent copy
#
# A copy between CPU and GPU memory is slow, so minires never makes one behind your back. A
# batch on the wrong device, or asking for a GPU that is not there, gives an error that says
# what to do:

# %%
wrong = to_numpy(x) if GPU else x
try:
    if GPU:
        model(wrong)                           # a NumPy batch into a model on the GPU
    else:
        model.to("cuda")                       # there is no GPU to move to
except DeviceError as e:
    print(f"{type(e).__name__}: {e}")

# %% [markdown]
# ## Speed
#
# The same training steps of ResNet-20 (batches of 256 digits), timed on the CPU and, if there
# is one, on the GPU. The first GPU steps compile CuPy's kernels and are left out of the timing.
# (On 8x8 digits every array is small, so a GPU is far from busy; on CIFAR-10 (32x32) or larger
# models the gap is much wider.)

# %%
def seconds_per_step(device, steps=3, warmup=1):
    nn.manual_seed(0)
    net = resnet20(num_classes=10, in_channels=1).to(device)
    xb, yb = next(iter(batches(train_set, 256, rng=0, device=device)))
    for i in range(warmup + steps):
        if i == warmup:
            if device == "cuda":
                cupy.cuda.Device().synchronize()
            start = time.perf_counter()
        loss = criterion(net(xb), yb)
        net.zero_grad()
        net.backward(criterion.backward())
        float(loss)                            # waits for the GPU to finish the step
    return (time.perf_counter() - start) / steps


cpu = seconds_per_step("cpu")
print(f"CPU (NumPy): {1000 * cpu:7.1f} ms per step")
if GPU:
    gpu = seconds_per_step("cuda", steps=20, warmup=3)
    print(f"GPU (CuPy):  {1000 * gpu:7.1f} ms per step, {cpu / gpu:.1f}x faster")
else:
    print("GPU (CuPy):  not measured, there is no GPU here")

# %% [markdown]
# ## Precision is a separate switch
#
# `model.to(dtype=np.float64)` keeps the device and changes the precision (the gradient checks
# use it); float32 is the default, and a float64 batch into a float32 model is an error rather
# than a silent conversion.

# %%
model64 = resnet20(num_classes=10, in_channels=1).to(device, np.float64)
print("float64 model, float64 batch:", model64(x.astype(np.float64)).dtype)
try:
    model(x.astype(np.float64))
except TypeError as e:
    print(f"float32 model, float64 batch: TypeError: {e}")
