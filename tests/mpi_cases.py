"""Cases run under ``mpiexec -n 2 python tests/mpi_cases.py CASE OUT.json`` by tests/test_distributed.py.

Each case runs on every rank; rank 0 writes what it found to OUT.json, and the test asserts on it.
(Not a test file itself: pytest collects test_*.py only.)
"""
import json
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minires.parallel import mpi as D  # noqa: E402
from minires.parallel.sampler import DistributedSampler  # noqa: E402
from minires import nn, no_grad  # noqa: E402
from minires.models import resnet20  # noqa: E402
from minires.parallel.syncbn import SyncBatchNorm, convert_sync_batchnorm  # noqa: E402
from minires.train.optim import SGD  # noqa: E402

STEPS, GLOBAL_BATCH = 3, 64


def small_net():
    """A model without batch norm: conv, ReLU, conv, ReLU, global pool, linear."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(6, 10))


def build(kind):
    nn.manual_seed(0)
    model = small_net() if kind == "plain" else resnet20(num_classes=10, in_channels=1)
    return model.to(dtype=np.float64)


def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((STEPS, GLOBAL_BATCH, 1, 8, 8)), rng.integers(0, 10, (STEPS, GLOBAL_BATCH))


def train(model, X, Y, world=None):
    """3 SGD steps; with a world, each rank takes its share of every batch and gradients are averaged."""
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    sampler = None if world is None else DistributedSampler(GLOBAL_BATCH, world.size, world.rank, shuffle=False)
    for x, y in zip(X, Y):
        if sampler is not None:
            mine = sampler.split(np.arange(GLOBAL_BATCH))
            x, y = x[mine], y[mine]
        criterion(model(x), y)
        model.zero_grad()
        model.backward(criterion.backward())
        if world is not None:
            D.average_gradients(model, world)
        opt.step()
    return model.state_dict()


def max_difference(a, b, buffers=False):
    """The largest difference between two state_dicts' parameters (or, with buffers=True, running statistics)."""
    keys = [k for k in a if ("running" in k) == buffers and a[k].dtype.kind == "f"]
    return max((float(np.max(np.abs(a[k] - b[k]))) for k in keys), default=0.0)


def case_equivalence(world):
    X, Y = data()
    found = {}
    for kind in ("plain", "syncbn", "bn"):
        single = train(build(kind), X, Y)
        model = build(kind)
        if kind == "syncbn":
            convert_sync_batchnorm(model)
        D.broadcast_state(model, world)
        parallel = train(model, X, Y, world)
        others = world.allgather_object(parallel)
        found[kind] = dict(vs_single=max_difference(single, parallel), between_ranks=max_difference(*others),
                           buffers_vs_single=max_difference(single, parallel, buffers=True),
                           buffers_between_ranks=max_difference(*others, buffers=True))
    # without SyncBN: each rank's batch statistics in the first batch norm, against the global batch's
    model = build("bn")
    x = X[0][DistributedSampler(GLOBAL_BATCH, world.size, world.rank, shuffle=False).split(np.arange(GLOBAL_BATCH))]
    with no_grad():
        h = model.conv1(x)                                # what bn1 normalises
    means = world.allgather_object(h.mean(axis=(0, 2, 3)))
    variances = world.allgather_object(h.var(axis=(0, 2, 3)))
    with no_grad():
        full = model.conv1(X[0])
    found["bn_statistics"] = dict(
        mean_rank_vs_global=max(float(np.max(np.abs(m - full.mean(axis=(0, 2, 3))))) for m in means),
        var_rank_vs_global=max(float(np.max(np.abs(v / full.var(axis=(0, 2, 3)) - 1))) for v in variances))
    return found


def case_gradcheck(world, eps=1e-6):
    """SyncBatchNorm's backward against central differences of the global objective sum_r <g_r, y_r>,
    every rank's input perturbed in turn (every rank runs every forward: it is collective)."""
    rng = np.random.default_rng([11, world.rank])
    bn = SyncBatchNorm(3).to(dtype=np.float64)
    bn.weight.data[...] = [1.5, -0.7, 0.9]
    bn.bias.data[...] = [0.1, 0.2, -0.3]
    x = rng.standard_normal((2, 3, 3, 2)) * [[[[1.0]], [[3.0]], [[0.5]]]] + 2.0
    g = rng.standard_normal(x.shape)
    y = bn(x)
    bn.zero_grad()
    dx = bn.backward(g)
    dweight, dbias = world.allreduce(bn.weight.grad.copy()), world.allreduce(bn.bias.grad.copy())

    def objective():
        with no_grad():
            return float(world.allreduce(np.array([np.sum(bn(x) * g)]))[0])

    numeric = np.zeros_like(x)
    for owner in range(world.size):
        for i in np.ndindex(*x.shape):
            old = x[i]
            values = []
            for step in (eps, -eps):
                if world.rank == owner:
                    x[i] = old + step
                values.append(objective())
                x[i] = old
            if world.rank == owner:
                numeric[i] = (values[0] - values[1]) / (2 * eps)
    num_params = {}
    for name, p in (("weight", bn.weight), ("bias", bn.bias)):
        num = np.zeros_like(p.data)
        for c in range(3):
            old = p.data[c]
            p.data[c] = old + eps
            plus = objective()
            p.data[c] = old - eps
            minus = objective()
            p.data[c] = old
            num[c] = (plus - minus) / (2 * eps)
        num_params[name] = num

    def rel(a, n):
        return float(np.max(np.abs(a - n)) / max(np.max(np.abs(a) + np.abs(n)), 1e-300))
    errors = world.allgather_object(rel(dx, numeric))
    return dict(input=max(errors), weight=rel(dweight, num_params["weight"]), bias=rel(dbias, num_params["bias"]),
                input_gradient_norm=float(np.linalg.norm(dx)), y_std=float(y.std()))


def case_mismatch(world):
    """Rank 1 asks for another learning rate: the check names it on every rank."""
    model = build("plain")
    try:
        D.check_same_everywhere(D.model_facts(model, {"lr": 0.1 * (1 + world.rank)}), world)
    except RuntimeError as e:
        return {"messages": world.allgather_object(str(e))}
    return {"messages": world.allgather_object(None)}


def case_fail(world):
    """Rank 1 raises while rank 0 waits for it in an all-reduce: every rank must end (no hang)."""
    if world.rank == 1:
        raise ValueError("rank 1 broke on purpose")
    world.allreduce(np.ones(3))
    return {"reached": "rank 0 got past the all-reduce, which it must not"}


def case_resume(world, root):
    """ResNet-20 with SyncBN on the digits: a run interrupted by Ctrl-C and resumed on 2
    processes, and the same interrupted run resumed on 1 process, against the uninterrupted run."""
    from minires.train import fit
    options = dict(epochs=2, batch_size=128, sync_bn=True, progress=False, plot=False)   # float32: see README
    fit("resnet20", "digits", out=os.path.join(root, "full"), **options)

    def interrupt(step, loss):
        if step == 7 and world.rank == 0:          # epoch 2, batch 2 of 5: only rank 0 sees Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
    for name in ("part2", "part1"):
        fit("resnet20", "digits", out=os.path.join(root, name), callback=interrupt, **options)
    fit(out=os.path.join(root, "part2"), resume=True, progress=False, plot=False)
    return {"done": True}


def case_other_data(world):
    """Rank 1 trains on digits with one pixel changed, then on digits with one image fewer: each time
    every rank stops before the first step with the same error, naming rank 1 and the data set."""
    from minires.data import load_dataset
    from minires.train import fit, run

    def altered(change):
        def load(name, root=None, download=True, image_size=None):
            train, test = load_dataset(name, root=root, download=download)
            return (change(train) if world.rank == 1 else train), test
        return load

    def one_pixel(train):
        train.images = train.images.copy()
        train.images[0, 0, 0, 0] += 0.5
        return train
    messages = []
    for change in (one_pixel, lambda train: train.subset(range(len(train) - 1))):
        run.load_dataset = altered(change)
        try:
            fit("resnet20", "digits", epochs=1, batch_size=64, progress=False, plot=False,
                callback=lambda step, loss: messages.append("trained"))
        except RuntimeError as e:
            messages.append(str(e))
    run.load_dataset = load_dataset
    return {"messages": world.allgather_object(messages)}


def case_blas(world):
    """The BLAS's threads inside blas_per_process (one per process by default) and after it."""
    try:
        from minires.parallel.blas import _openblas        # where OpenBLAS's setting lives now
    except ImportError:
        from minires.parallel.threads import _openblas
    from minires.train.data_parallel import blas_per_process
    before = _openblas().get()
    with blas_per_process(world):
        inside = _openblas().get()
    return {"before": before, "inside": inside, "after": _openblas().get()}


def case_gpu(world):
    """CuPy arrays: the all-reduce through NCCL (if it accepts these GPUs) and through host buffers,
    and SyncBatchNorm on CuPy arrays against NumPy."""
    import cupy
    found = {"device": int(cupy.cuda.Device().id)}
    for path in ("nccl", "host"):
        os.environ["MINIRES_ALLREDUCE"] = path
        world._nccl = None
        a = cupy.arange(6, dtype=cupy.float32) * (world.rank + 1)
        world.allreduce(a)
        found[path] = cupy.asnumpy(a).tolist()
        found[path + "_used_nccl"] = bool(world._nccl)
    rng = np.random.default_rng([3, world.rank])
    x = rng.standard_normal((2, 3, 4, 4))
    results = []
    for device in ("cpu", "cuda"):
        bn = SyncBatchNorm(3).to(device, np.float64)
        xd = cupy.asarray(x) if device == "cuda" else x
        y = bn(xd)
        dx = bn.backward(xd * 0 + 1.5 * xd)
        results.append((cupy.asnumpy(y) if device == "cuda" else y, cupy.asnumpy(dx) if device == "cuda" else dx))
    found["syncbn_cpu_vs_gpu"] = max(float(np.max(np.abs(a - b))) for a, b in zip(*results))
    return found


def case_sigterm(world, root, who):
    """Training stopped by SIGTERM: from outside (``who`` 'outside': rank 0 writes ROOT/ready after
    step 2, the test signals mpiexec, which passes it to every rank) or on rank 1 alone, after step
    3. Every rank stops after the same step, with SIGTERM's exit code."""
    from minires.train import fit
    steps = []

    def callback(step, loss):
        steps.append(step)
        if who == "outside" and step == 2 and world.rank == 0:
            open(os.path.join(root, "ready"), "w").close()
        if who == "rank1" and step == 3 and world.rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)
    history = fit("resnet20", "digits", out=os.path.join(root, "run"), epochs=2, batch_size=32, progress=False,
                  plot=False, callback=callback)
    return {"last_steps": world.allgather_object(steps[-1]), "stopped_by": world.allgather_object(history.stopped_by),
            "exit_code": history.exit_code}


def case_diverge(world):
    """lr 50 without SyncBN: each rank's batch norm sees its own images, and one may overflow first;
    every rank stops at the same step, with the same message, marked as raised on every rank."""
    from minires.train import TrainingDiverged, fit
    try:
        fit("resnet20", "digits", epochs=2, batch_size=32, lr=50, progress=False, plot=False)
    except TrainingDiverged as e:
        return {"errors": world.allgather_object([str(e), getattr(e, "raised_on_every_rank", False)])}
    return {"errors": "fit returned"}


def case_refused(world, root):
    """Rank 1 resumes a folder with nothing to resume, rank 0 a run that is there: every rank raises
    before training, rank 0 naming rank 1's error, each marked as raised on every rank."""
    from minires.train import fit
    good = os.path.join(root, "good")
    fit("resnet20", "digits", out=good, epochs=1, batch_size=256, progress=False, plot=False)
    try:
        fit(out=good if world.rank == 0 else os.path.join(root, "empty"), resume=True, progress=False, plot=False)
    except Exception as e:   # noqa: BLE001 -- the test looks at what each rank raised
        return {"errors": world.allgather_object([type(e).__name__, str(e), getattr(e, "raised_on_every_rank", 0)])}
    return {"errors": "fit returned"}


def main():
    case, out = sys.argv[1], sys.argv[2]
    world = D.get_world()
    result = globals()["case_" + case](world, *sys.argv[3:])
    code = result.pop("exit_code", 0)         # what this rank's program exits with
    if world.rank == 0:
        result["world_size"] = world.size
        with open(out, "w") as f:
            json.dump(result, f)
    sys.exit(code)


if __name__ == "__main__":
    main()
