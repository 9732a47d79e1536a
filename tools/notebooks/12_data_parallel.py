# Source of tutorials/12_data_parallel.ipynb: edit here, then run python tools/make_notebooks.py

# %% [markdown]
# # 12. More than one machine: data parallelism
#
# The paper trains its CIFAR ResNets for 64,000 steps of 128 images: hours on one CPU. The big
# runs share the work out. In **data parallelism** every process (a *rank*) holds the whole
# model, takes its own *shard* of each batch, and before the optimizer step the ranks average
# their gradients with one collective operation, an **all-reduce**. Then every rank takes the
# same step, and the models stay identical. minires does it over MPI
# (`mpiexec -n 4 minires train`); in this notebook you will see
#
# 1. the shard: how an epoch's images are dealt out to the ranks;
# 2. the all-reduce, written out as the ring algorithm clusters use, and what it costs;
# 3. why averaging the gradients of W batches of B images is *exactly* one batch of W*B, and
#    the one layer for which it is not: batch norm;
# 4. `SyncBatchNorm`, which makes it exact again, and its backward;
# 5. a real run with 2 processes (`mpiexec`, if it is installed here; otherwise a simulation,
#    and the notebook says so);
# 6. the same idea inside one process, on threads: `ThreadParallel`, how `minires train` uses
#    every core of a laptop.

# %%
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from minires.parallel import mpi as D
from minires.parallel.sampler import DistributedSampler
from minires import nn
from minires.models import resnet20, resnet50
from minires.nn.norm import batchnorm_backward
from minires.parallel.syncbn import convert_sync_batchnorm

here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
MPIEXEC = here if os.path.exists(here) else shutil.which("mpiexec")
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
print(f"mpiexec: {MPIEXEC or 'not found'}; mpi4py: {'installed' if HAVE_MPI4PY else 'not installed'}")
HAVE_MPI = MPIEXEC is not None and HAVE_MPI4PY
print("The last part runs 2 real processes." if HAVE_MPI else
      "The last part will SIMULATE 2 processes with threads (pip install mpi4py mpich for the real thing).")

# %% [markdown]
# ## 1. The shard
#
# Every epoch, every rank draws the *same* seeded permutation of the training set, the one a
# single process would draw, and takes every W-th image of it, starting at its rank: the
# cards are dealt out. If the number of images is not a multiple of W, the permutation is
# padded with its own first images, so that every rank takes the same number of steps (a
# rank that finished early would leave the others waiting). That is PyTorch's
# `DistributedSampler`, and `minires.parallel.sampler.DistributedSampler`:

# %%
n, W = 10, 3
order = np.random.default_rng([0, 0]).permutation(n)       # epoch 0, seed 0: what one process would use
print("the epoch's permutation:", order.tolist())
for rank in range(W):
    shard = DistributedSampler(n, W, rank, seed=0).split(order)
    print(f"rank {rank} takes     ", shard.tolist())

# %% [markdown]
# Read the columns: the first image of every rank together are the first W images of the
# permutation, the second ones the next W, and so on. So the first *batches* of B images of
# all ranks are together the first batch of W*B images a single process would take. The
# **global batch** is W x B; `--batch-size` is the batch *per process*.

# %%
B, W, n = 4, 2, 40
order = np.random.default_rng([0, 0]).permutation(n)
firsts = [DistributedSampler(n, W, r).split(order)[:B] for r in range(W)]
print("rank batches:", [f.tolist() for f in firsts])
print("one process, batch", W * B, ":", sorted(order[:W * B].tolist()))
print("the same images:", sorted(np.concatenate(firsts).tolist()) == sorted(order[:W * B].tolist()))

# %% [markdown]
# ## 2. The all-reduce
#
# After backward, rank r holds its gradient g_r; every rank needs the sum g_0 + ... + g_(W-1).
# Sending every gradient to one rank and back would make that rank's link carry W gradients.
# The **ring all-reduce** (Baidu 2017, used by NCCL and MPI libraries) cuts each gradient into
# W chunks and passes chunks around a ring of ranks, in two phases:
#
# * **reduce-scatter**, W - 1 steps: each rank sends one chunk to its right neighbour, which
#   adds it to its own copy of that chunk. Afterwards rank r holds the full sum of one chunk.
# * **all-gather**, W - 1 steps: the summed chunks go round the ring once more, copied.
#
# Here it is, with the ranks as a list of arrays in this process:

# %% [markdown]
# Simulated ranks, each with its shard from `DistributedSampler`, their gradients averaged by
# `average_gradients` (`draw_all_reduce`): the average is the gradient of the whole batch.

# %%
from minires.teach import diagrams  # the book's figures, each drawn from the code it shows

diagrams.draw_all_reduce();

# %%
def ring_allreduce(grads):
    """Sum a list of W equal-shaped 1-D arrays with a ring all-reduce; returns (the W results, values sent per rank)."""
    W = len(grads)
    chunks = [np.array_split(g.astype(float), W) for g in grads]   # chunks[rank][c]
    sent = 0
    for step in range(W - 1):                                       # reduce-scatter
        for r in range(W):                                          # rank r sends chunk (r - step) to r + 1
            c = (r - step) % W
            chunks[(r + 1) % W][c] = chunks[(r + 1) % W][c] + chunks[r][c]
        sent += len(chunks[0][0])
    for step in range(W - 1):                                       # all-gather: pass the summed chunks on
        for r in range(W):
            c = (r + 1 - step) % W
            chunks[(r + 1) % W][c] = chunks[r][c].copy()
        sent += len(chunks[0][0])
    return [np.concatenate(c) for c in chunks], sent


rng = np.random.default_rng(0)
grads = [rng.standard_normal(12) for _ in range(4)]
results, sent = ring_allreduce(grads)
print("every rank has the sum:", all(np.allclose(res, sum(grads)) for res in results))
print(f"each rank sent {sent} values for a gradient of {grads[0].size}: 2 (W - 1) / W of it")

# %% [markdown]
# (The loops run the ranks one after another, where real ranks send at once; in every step
# each rank sends a different chunk from the one it receives, so the result is the same.)
#
# Each rank sends about **twice its gradient per step, however many ranks there are**. That
# is why data parallelism scales: the time of an all-reduce barely grows with W. For the
# models of this library, in float32:

# %%
for name, model in (("ResNet-20", resnet20(num_classes=10)), ("ResNet-50", resnet50())):
    P = model.num_parameters()
    for ranks in (8, 64):
        volume = 2 * (ranks - 1) / ranks * 4 * P
        print(f"{name:9s} {P:>11,} parameters, {ranks:2d} ranks: {volume / 1e6:7.2f} MB sent per rank per step, "
              f"{1e3 * volume * 8 / 10e9:6.2f} ms on 10 Gbit/s, {1e3 * volume * 8 / 100e9:5.2f} ms on 100 Gbit/s")

# %% [markdown]
# In minires the all-reduce is MPI's (`comm.Allreduce`, `minires/parallel/mpi.py`), and
# `average_gradients` copies every gradient into **one flat buffer** first: one message of a
# few MB is far cheaper than one small message per parameter tensor, because each message
# pays a fixed latency.
#
# ## 3. Why the average of the gradients is one big batch
#
# The loss of a batch is the mean over its images. The mean over W*B images is the mean of
# the W means over B images, and the gradient of a mean is the mean of the gradients. So:
# W ranks with B images each, gradients averaged, compute exactly the gradient of one batch
# of W*B. Checked on a small network without batch norm, in float64, by splitting a batch of
# 64 in two:

# %%
def gradients(model, x, y):
    criterion = nn.CrossEntropyLoss()
    criterion(model(x), y)
    model.zero_grad()
    model.backward(criterion.backward())
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def small_net(batch_norm=False):
    nn.manual_seed(0)
    layers = [nn.Conv2d(1, 8, 3, padding=1)] + ([nn.BatchNorm2d(8)] if batch_norm else []) + [
        nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(8, 10)]
    return nn.Sequential(*layers).to(dtype=np.float64)


rng = np.random.default_rng(1)
x, y = rng.standard_normal((64, 1, 8, 8)), rng.integers(0, 10, 64)


def compare(batch_norm):
    net = small_net(batch_norm)
    full = gradients(net, x, y)
    halves = [gradients(net, x[r::2], y[r::2]) for r in range(2)]      # rank r's shard
    averaged = {k: (halves[0][k] + halves[1][k]) / 2 for k in full}
    return max(float(np.max(np.abs(averaged[k] - full[k]))) for k in full)


print(f"without batch norm: averaged halves vs the whole batch, largest difference {compare(False):.1e}")
print(f"with batch norm:    averaged halves vs the whole batch, largest difference {compare(True):.1e}")

# %% [markdown]
# The first is float64 rounding. The second is not: **batch norm mixes the images of a
# batch**. Each rank normalises with the mean and variance of *its* B images, which are not
# those of the W*B. How far apart, for the first batch norm of this net:

# %%
conv = small_net(True)[0]
with nn.no_grad():
    h = conv(x)
for r in range(2):
    part = h[r::2]
    print(f"rank {r}: channel means differ from the global batch's by up to "
          f"{np.max(np.abs(part.mean(axis=(0, 2, 3)) - h.mean(axis=(0, 2, 3)))):.3f}, variances by up to "
          f"{np.max(np.abs(part.var(axis=(0, 2, 3)) / h.var(axis=(0, 2, 3)) - 1)):.1%}")

# %% [markdown]
# Often that is acceptable, even welcome (the noise of small batches regularises), and it is
# minires's default, as PyTorch's. But then W ranks of B images are *not* one batch of W*B,
# and results change with the number of processes.
#
# ## 4. SyncBatchNorm
#
# `SyncBatchNorm` computes the statistics over every rank's images. It is no new layer: it is
# batch norm given a `group` (the protocol at the top of `minires/nn/norm.py`), and
# `convert_sync_batchnorm(model)` gives every batch norm of a model the MPI world as its group.
# In forward each rank computes its count, mean and variance per channel; one all-reduce gathers
# every rank's, and `combine_moments` (Chan's formula, in float64) turns them into the global
# mean and variance. The backward needs the derivative through those global statistics, and
# it ends in
#
#     dx_i = weight / sqrt(var + eps) * (g_i - mean_j(g_j) - xhat_i * mean_j(g_j * xhat_j))
#
# where the means run over the global batch: one more all-reduce of the two per-channel sums
# `sum g` and `sum g * xhat`, which are the bias and weight gradients (`sum_over_parts`). The
# textbook backward, with the one branch that a group takes:

# %%
print(inspect.getsource(batchnorm_backward))

# %% [markdown]
# Two ranks, simulated here by two threads of this process (`minires.parallel.mpi.simulate`:
# each thread gets its own rank and a shared all-reduce; a simulation, not MPI), each
# normalising half of a batch, against one batch norm over the whole batch:

# %%
rng = np.random.default_rng(2)
xb, g = rng.standard_normal((8, 3, 4, 4)) * 3 + 1, rng.standard_normal((8, 3, 4, 4))
whole = nn.BatchNorm2d(3).to(dtype=np.float64)
y_whole = whole(xb)
dx_whole = whole.backward(g)
ranks = [convert_sync_batchnorm(nn.BatchNorm2d(3).to(dtype=np.float64)) for _ in range(2)]


def rank_step():
    r = D.get_world().rank
    return ranks[r](xb[4 * r:4 * r + 4]), ranks[r].backward(g[4 * r:4 * r + 4])


(y0, dx0), (y1, dx1) = D.simulate(2, rank_step)
print(f"forward:  largest difference {np.max(np.abs(np.concatenate([y0, y1]) - y_whole)):.1e}")
print(f"backward: largest difference {np.max(np.abs(np.concatenate([dx0, dx1]) - dx_whole)):.1e}")
print(f"weight gradient: rank shares {ranks[0].weight.grad.round(3)} + {ranks[1].weight.grad.round(3)} "
      f"= {(ranks[0].weight.grad + ranks[1].weight.grad).round(3)}, whole batch {whole.weight.grad.round(3)}")

# %% [markdown]
# Each rank's weight gradient is its *share*; `average_gradients` adds the shares of all
# ranks (and divides by W, as for every parameter, because each rank's loss was a mean over
# its own B images). `minires train --sync-bn` converts every batch norm of the model
# (`convert_sync_batchnorm`: same parameters, buffers and checkpoint keys).
#
# ## 5. Two processes, for real
#
# `mpiexec -n 2 minires train` starts two processes; each finds its rank from MPI, trains on its
# shard, and only rank 0 prints, draws and writes the run folder. The first line says which
# batch is which. With mpiexec here, the cell runs one epoch on the digits; without it, it
# simulates 3 SGD steps of two ranks with threads and compares them with one process.

# %%
if HAVE_MPI:
    out = os.path.join(tempfile.mkdtemp(), "run")
    root = os.path.dirname(os.path.dirname(os.path.abspath(inspect.getfile(D))))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "minires.cli", "train", "--epochs", "1", "--batch-size", "64",
           "--sync-bn", "--out", out, "--no-progress", "--no-plot"]
    print("$", " ".join(cmd[:3]), "python -m minires.cli", " ".join(cmd[6:]))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout or proc.stderr)
    print("config.json:", {k: v for k, v in json.load(open(os.path.join(out, "config.json"))).items()
                           if k in ("batch_size", "world_size", "sync_bn")})
else:
    print("SIMULATION: two ranks as threads of this process (mpiexec is not available here).")
    from minires.train.optim import SGD
    X, Y = rng.standard_normal((3, 64, 1, 8, 8)), rng.integers(0, 10, (3, 64))

    def train(world_size):
        nn.manual_seed(0)
        model = resnet20(num_classes=10, in_channels=1).to(dtype=np.float64)
        world = D.get_world()
        if world_size > 1:
            convert_sync_batchnorm(model)
            D.broadcast_state(model, world)
        opt, criterion = SGD(model.parameters(), lr=0.1, momentum=0.9), nn.CrossEntropyLoss()
        for xs, ys in zip(X, Y):
            mine = DistributedSampler(64, world.size, world.rank, shuffle=False).split(np.arange(64))
            criterion(model(xs[mine]), ys[mine])
            model.zero_grad()
            model.backward(criterion.backward())
            D.average_gradients(model, world)
            opt.step()
        return model.state_dict()

    one = train(1)
    two = D.simulate(2, train, 2)
    print(f"ResNet-20 with SyncBatchNorm, 3 SGD steps: 2 simulated ranks x 32 vs 1 process x 64, largest "
          f"parameter difference {max(float(np.max(np.abs(two[0][k] - one[k]))) for k in one):.1e}")

# %% [markdown]
# ## On a cluster
#
# The same command runs on many machines: `mpiexec -n 16 -hostfile hosts minires train ...`
# with Open MPI or MPICH, or `srun -n 16 minires train ...` under SLURM (the README's "More than
# one machine"). Three things to remember:
#
# * **The learning rate goes with the global batch.** Doubling the processes doubles the
#   global batch; the usual rule (Goyal et al., 2017) scales the learning rate by the same
#   factor, with a few epochs of warm-up (`--warmup-epochs`).
# * **Resume** with the same number of processes continues bit for bit; with another number,
#   minires keeps the global batch, and the run continues equal up to rounding (with
#   `--sync-bn`; without, batch norm's statistics follow the new per-process batch).
# * **A rank that fails ends them all** (`MPI_Abort`), instead of leaving the others waiting
#   forever in an all-reduce.

# %% [markdown]
# ## 6. The same idea inside one process: `ThreadParallel`
#
# A laptop has several cores, and NumPy uses all of them only inside its matrix multiplies
# (OpenBLAS's threads); its copies and element-wise passes (im2col, batch norm, ReLU) run on
# one. The obvious fix, each layer splitting its own work between threads, does not pay:
# those passes are limited by the memory bus, which one core already keeps busy, and two
# threads doing the same kind of work at the same moment only queue for it. What pays is
# data parallelism again, with threads for ranks: each thread runs the **whole network** on
# its part of the batch, so while one is in a matrix multiply (arithmetic), the other is
# often copying (memory).
#
# `minires.parallel.ThreadParallel(model)` does exactly this (`minires/parallel/threads.py`). Its replicas
# share the model's weights (the same arrays, not copies) and have their own gradients; after
# backward it adds the replicas' gradients up -- the all-reduce of section 2, inside one
# process. Batch norm is synchronised exactly as in section 4: while the replicas run, each
# replica's batch norms get a group (`minires/parallel/threads.py:ReplicaPart`) that gathers
# through a barrier instead of an all-reduce, and the parts' means and variances are combined
# by the same Chan's formula (`minires/nn/norm.py:combine_moments`): the whole batch's variance
# is the parts' own variances plus the spread of their means,
#
# $$\sigma^2 = \frac{1}{M}\sum_r n_r\left(\sigma_r^2 + (\mu_r - \mu)^2\right),$$
#
# which, unlike $E[x^2] - E[x]^2$, does not cancel in float32. So the replicas compute the
# numbers of the model alone, to rounding:

# %%
from minires.parallel import ThreadParallel

nn.manual_seed(0)
model = resnet20(num_classes=10).to(dtype=np.float64)
x = rng.standard_normal((8, 3, 32, 32))
g = rng.standard_normal((8, 10))
state = {k: v.copy() for k, v in model.state_dict().items()}
with nn.plain():                                   # the textbook path, one thread
    y_alone = model(x)
    dx_alone = model.backward(g)
grads_alone = [p.grad.copy() for p in model.parameters()]
model.zero_grad()
model.load_state_dict(state)
net = ThreadParallel(model, threads=2, min_part_values=1)    # min_part_values=1: split even this small batch
y_net = net(x)
dx_net = net.backward(g)
print("parts of the batch:", net.parts)
print(f"largest difference: output {np.max(np.abs(y_net - y_alone)):.1e}, input gradient "
      f"{np.max(np.abs(dx_net - dx_alone)):.1e}, parameter gradients "
      f"{max(float(np.max(np.abs(p.grad - q))) for p, q in zip(model.parameters(), grads_alone)):.1e}")

# %% [markdown]
# Is it faster? That depends on the size of the parts. Every layer call costs the threads a
# little Python and a hand-over of Python's lock, and every batch norm a wait for the other
# replicas; on small arrays that costs more than the work it shares. So `ThreadParallel`
# splits only parts of at least `MIN_PART_VALUES` input values, and otherwise runs the model
# alone (`minires train` on the 8x8 digits does). Time one training step of ResNet-20 on
# CIFAR-sized images both ways (float32, as in training; steps alternate, and the median is
# printed; on a busy machine the numbers wander):

# %%
import time

from minires.parallel import threads
from minires.train.optim import SGD

print(f"cores this process may use: {threads.default_threads()}; "
      f"MIN_PART_VALUES = {threads.MIN_PART_VALUES:,}")
nn.manual_seed(0)
model = resnet20(num_classes=10)
opt, criterion = SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()
xb = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
yb = rng.integers(0, 10, 128)


def step(net):
    opt.zero_grad()
    criterion(net(xb), yb)
    net.backward(criterion.backward())
    opt.step()


both = {"the model alone": model, "ThreadParallel(model)": ThreadParallel(model)}
times = {name: [] for name in both}
for name, net in both.items():
    step(net)                                       # warm-up: workspaces, replicas
for _ in range(3):
    for name, net in both.items():
        t0 = time.perf_counter()
        step(net)
        times[name].append(time.perf_counter() - t0)
for name, ts in times.items():
    print(f"{name:24s} {1e3 * np.median(ts):6.0f} ms per step of 128 images")
print("ThreadParallel split the batch into", both["ThreadParallel(model)"].parts or "nothing (one part)")

# %% [markdown]
# On a machine with one core (or `MINIRES_NUM_THREADS=1`) the two lines time the same thing.
# The measured comparison with PyTorch, and where the time of a step goes, thread by thread:
# `benchmarks/README.md`.
