"""ThreadParallel (minires/parallel/threads.py): the batch split over replicas on threads computes what
the model alone computes -- outputs, input gradient, parameter gradients, running statistics --
in float64 to 1e-10; it passes through where it must; an error in one replica never hangs, nor do
two objects stepped from two threads; one model from two threads at once is refused."""
import copy
import sys
import threading
import time

import numpy as np
import pytest

from minires import models, nn
from minires.parallel import blas, threads
from minires.nn.norm import combine_moments, whole_batch_moments
from minires.parallel.threads import ReplicaGroup, ReplicaPart, ThreadParallel

from backends import DEVICE_BACKENDS
from helpers import forward_backward
from reference import fixture_model

needs_blas = pytest.mark.skipif(not threads.blas_controllable(),
                                reason="this NumPy's BLAS is not an OpenBLAS whose threads minires can set: "
                                       "ThreadParallel runs the model alone here")


def _assert_same(a, b, tol=1e-10):
    for what, u, v in (("output", a[0], b[0]), ("input gradient", a[1], b[1])):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol * np.abs(v).max(), err_msg=what)
    # absolute tolerance from the largest gradient: a conv bias before a batch norm has gradient
    # 0 in exact arithmetic, rounding noise (1e-13) on both paths
    scale = max(float(np.abs(v).max()) for v in b[2].values())
    for key in b[2]:
        np.testing.assert_allclose(a[2][key], b[2][key], rtol=tol, atol=tol * scale, err_msg=f"gradient of {key}")
    for key in b[3]:
        np.testing.assert_allclose(a[3][key], b[3][key], rtol=tol, atol=tol, err_msg=f"buffer {key}")


@needs_blas
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,side,batch,n", [("resnet20", 8, 5, 2), ("resnet20_B", 8, 6, 3),
                                               ("resnet50", 48, 4, 2), ("resnext50_32x4d", 48, 3, 3),
                                               ("plain20", 8, 7, 4)])
def test_thread_parallel_equals_the_plain_model(name, side, batch, n, train):
    """Every replica's part together: the same numbers as the textbook path on the whole batch,
    with uneven parts (5 images on 2 replicas, 7 on 4), bottlenecks, groups and both shortcuts."""
    model, _ = fixture_model(name)
    model.train(train)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, 3, side, side))
    upstream = rng.standard_normal((batch, model.fc.out_features))
    state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    net = ThreadParallel(model, threads=n, min_part_values=1)
    fast = forward_backward(model, x, upstream, net)
    assert net.parts is not None and len(net.parts) == n        # it did split
    model.load_state_dict(state)
    with nn.plain():
        slow = forward_backward(model, x, upstream, model)
    _assert_same(fast, slow)


@needs_blas
def test_thread_parallel_is_deterministic_and_keeps_float32():
    """Partial sums are added in replica order: two runs agree bit for bit, whoever finished first."""
    nn.manual_seed(0)
    model = models.resnet20(num_classes=10)
    x = np.random.default_rng(0).standard_normal((6, 3, 16, 16)).astype(np.float32)
    upstream = np.random.default_rng(1).standard_normal((6, 10)).astype(np.float32)
    state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    net = ThreadParallel(model, threads=2, min_part_values=1)
    first = forward_backward(model, x, upstream, net)
    model.load_state_dict(state)
    second = forward_backward(model, x, upstream, net)
    assert first[0].dtype == np.float32 and first[1].dtype == np.float32
    for a, b in zip(first[:2], second[:2]):
        np.testing.assert_array_equal(a, b)
    for key in first[2]:
        assert first[2][key].dtype == np.float32
        np.testing.assert_array_equal(first[2][key], second[2][key])
    assert int(model.bn1.num_batches_tracked) == 1      # one replica updates the shared buffers, once


@needs_blas
def test_gradients_accumulate_and_the_replicas_follow_the_model():
    """Two backwards add up as on the model alone; a model moved to float64 after the first call
    (new parameter arrays) gets new replicas; eval() reaches the replicas."""
    nn.manual_seed(1)
    model = models.resnet20(num_classes=10)
    ref = copy.deepcopy(model)
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((4, 3, 8, 8)).astype(np.float32), rng.standard_normal((4, 10)).astype(np.float32)
    net = ThreadParallel(model, threads=2, min_part_values=1)
    with nn.no_grad():
        net.eval()(x)                                   # replicas made (running statistics untouched)
    net.train()
    model.to(dtype=np.float64)
    ref.to(dtype=np.float64)
    x, g = x.astype(np.float64), g.astype(np.float64)
    for _ in range(2):
        net(x)
        net.backward(g)
        with nn.plain():
            ref(x)
            ref.backward(g)
    for (key, p), q in zip(model.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=key)
    net.eval()
    ref.eval()
    with nn.no_grad():
        np.testing.assert_allclose(net(x), ref(x), rtol=1e-10, atol=1e-12)
    assert not any(m.training for r in net._replicas for m in r.modules())


def test_passes_through_where_it_must():
    """The plain path, one thread, one image, a small batch and a model with Dropout run the model alone."""
    nn.manual_seed(2)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    model = models.resnet20(num_classes=10)
    with nn.plain():
        net = ThreadParallel(model, threads=2, min_part_values=1)
        net(x)
        assert net.parts is None
    for net, inp in ((ThreadParallel(model, threads=1, min_part_values=1), x), (ThreadParallel(model, threads=2, min_part_values=1), x[:1])):
        net(inp)
        assert net.parts is None
    net = ThreadParallel(model, threads=2)                     # 4 x 3 x 8 x 8: below MIN_PART_VALUES
    net(x)
    assert net.parts is None
    dropping = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5))
    net = ThreadParallel(dropping, threads=2, min_part_values=1)
    net(x)
    assert net.parts is None


@needs_blas
def test_parts_hold_at_least_min_part_values():
    net = ThreadParallel(nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2)), threads=4)
    side = int(np.ceil(np.sqrt(threads.MIN_PART_VALUES / 3)))
    net(np.zeros((4, 3, side, side), np.float32))          # one part's worth per image: 4 parts
    assert net.parts == [(0, 1), (1, 2), (2, 3), (3, 4)]
    net(np.zeros((4, 3, side, side // 2), np.float32))     # two parts' worth
    assert net.parts == [(0, 2), (2, 4)]


@needs_blas
def test_an_error_in_one_replica_is_raised_and_nothing_hangs():
    """Replica 1 fails before the first batch norm while replica 0 waits there: the barrier is
    broken, every thread returns, and the real error (not BrokenBarrierError) comes out."""
    class FailsOffTheMainThread(nn.Module):
        def forward(self, x):
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("replica 1 failed")
            return x

        def backward(self, grad_out):
            return grad_out

    model = nn.Sequential(FailsOffTheMainThread(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    result = {}

    def call():
        try:
            ThreadParallel(model, threads=2, min_part_values=1)(x)
        except Exception as e:          # noqa: BLE001 -- recorded for the assertions below
            result["error"] = e
    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "ThreadParallel hung"
    assert isinstance(result.get("error"), RuntimeError) and "replica 1 failed" in str(result["error"])


@needs_blas
def test_bad_input_gets_the_layers_message_and_blas_gets_its_threads_back():
    model = models.resnet20(num_classes=10)
    before = blas._openblas().get()
    with pytest.raises(ValueError, match="channel"):
        ThreadParallel(model, threads=2, min_part_values=1)(np.zeros((4, 5, 8, 8), np.float32))
    assert blas._openblas().get() == before
    net = ThreadParallel(model, threads=2, min_part_values=1)
    net(np.zeros((4, 3, 8, 8), np.float32))
    assert blas._openblas().get() == before
    with pytest.raises(ValueError, match="batch of 4, the gradient has 3"):
        net.backward(np.zeros((3, 10), np.float32))


def test_the_thread_count_and_the_timeout_are_checked():
    """(MINIRES_NUM_THREADS: tests/test_env.py.)"""
    with pytest.raises(ValueError, match="threads must be a positive int"):
        ThreadParallel(models.resnet20(), threads=0)
    for bad in (0, -1, float("inf"), float("nan"), True, "5"):
        with pytest.raises(ValueError, match=r"ThreadParallel: timeout must be a positive number of seconds, got "):
            ThreadParallel(models.resnet20(), timeout=bad)
    assert ThreadParallel(models.resnet20(), threads=3, timeout=0.5).timeout == 0.5


def test_combined_moments_are_the_whole_batchs():
    """Chan's combination of per-part means and variances: the whole batch's, to float64 rounding."""
    rng = np.random.default_rng(4)
    parts = [rng.normal(5.0, 0.01, size=(3, n)) for n in (7, 2, 11)]   # |mean| >> std: no cancellation
    group = ReplicaGroup(len(parts))
    out = [None] * len(parts)

    def member(r):
        p = parts[r]
        out[r] = whole_batch_moments(ReplicaPart(group, r), p.mean(axis=1), p.var(axis=1), p.shape[1])
    ts = [threading.Thread(target=member, args=(r,)) for r in range(len(parts))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    whole = np.concatenate(parts, axis=1)
    for r, (m, v, M) in enumerate(out):
        assert M == 20
        np.testing.assert_allclose(m, whole.mean(axis=1), rtol=1e-14)
        np.testing.assert_allclose(v, whole.var(axis=1), rtol=1e-10)
        np.testing.assert_array_equal(m, out[0][0])          # the same numbers on every replica
    m, v, M = combine_moments([(p.shape[1], p.mean(axis=1), p.var(axis=1)) for p in parts])   # no threads needed
    np.testing.assert_array_equal(m, out[0][0])


@needs_blas
def test_a_replica_of_a_replica_runs_alone():
    """ThreadParallel called from inside a replica (a model that wraps its own part) does not
    start threads within threads: the inner one runs its model alone."""
    inner_parts = []

    class Inner(nn.Module):
        def __init__(self):
            self.net = ThreadParallel(nn.Conv2d(3, 3, 1), threads=2, min_part_values=1)

        def forward(self, x):
            y = self.net(x)
            inner_parts.append(self.net.parts)
            return y

        def backward(self, grad_out):
            return self.net.backward(grad_out)

    outer = ThreadParallel(Inner(), threads=2, min_part_values=1)
    outer(np.ones((4, 3, 2, 2), np.float32))
    assert outer.parts == [(0, 2), (2, 4)] and inner_parts == [None, None]


@pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
def test_on_the_device_it_runs_the_model_alone(backend_name, device, xp):
    """CuPy arrays (and the [strict] stand-in) are never split: the GPU has its own parallelism."""
    nn.manual_seed(3)
    model = models.resnet20(num_classes=10).to(device)
    x = xp.asarray(np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32))
    net = ThreadParallel(model, threads=2, min_part_values=1)
    y = net(x)
    assert net.parts is None and y.shape == (4, 10)
    dx = net.backward(xp.ones_like(y))
    assert dx.shape == x.shape


@needs_blas
@pytest.mark.parametrize("name", ["keras_resnet50v2", "tf_resnet34"])
def test_thread_parallel_equals_the_plain_keras_flavour(name):
    """The Keras flavour: its batch norm (Keras's momentum, a BatchNorm2d underneath), TensorFlow's
    "same" padding, the pre-activation blocks: under ThreadParallel as on the plain path."""
    from minires.zoo import get_model
    nn.manual_seed(4)
    model = get_model(name, num_classes=5, classifier_activation=None).to(dtype=np.float64)
    rng = np.random.default_rng(5)
    x, upstream = rng.standard_normal((4, 3, 32, 32)), rng.standard_normal((4, 5))
    state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    net = ThreadParallel(model, threads=2, min_part_values=1)
    fast = forward_backward(model, x, upstream, net)
    assert net.parts == [(0, 2), (2, 4)]
    model.load_state_dict(state)
    with nn.plain():
        slow = forward_backward(model, x, upstream)
    _assert_same(fast, slow)


# ----- safe to misuse (issue 26) -----

def _in_threads(fns, timeout=120):
    """Each fn() on a daemon thread of its own, all at once -> their results; the first error is
    raised here. A hang fails the test after ``timeout`` seconds instead of hanging the run."""
    results, errors = [None] * len(fns), []

    def target(k):
        try:
            results[k] = fns[k]()
        except BaseException as e:      # noqa: B036 -- raised below, on the test's thread
            errors.append(e)
    ts = [threading.Thread(target=target, args=(k,), name=f"caller {k}", daemon=True) for k in range(len(fns))]
    [t.start() for t in ts]
    deadline = time.monotonic() + timeout
    [t.join(max(0.0, deadline - time.monotonic())) for t in ts]
    assert not any(t.is_alive() for t in ts), f"hung: still running after {timeout} s"
    if errors:
        raise errors[0]
    return results


ONLY_SLOW = r" \(only slow\? ThreadParallel\(timeout=\.\.\.\)\)$"     # the end of the timeout's message


def _small_net(seed):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)).to(dtype=np.float64)


@needs_blas
def test_two_objects_stepped_from_two_threads_never_deadlock():
    """Two objects of 4 replicas each, stepped from two threads at once, hung in about half the runs
    when every ThreadParallel shared one pool of workers: each call held some of them, its replicas
    waiting in a barrier for one queued behind the other call's. (That pool hung within 2000 forwards
    every time with the GIL handed over every microsecond, as here.) Each object has its own workers
    now: 1000 steps each finish, every one with the model's numbers, and BLAS gets its setting back."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((4, 3, 6, 6)), rng.standard_normal((4, 4, 2, 2))
    nets = [ThreadParallel(_small_net(seed), threads=4, min_part_values=1) for seed in (0, 1)]
    with nn.plain():
        expected = [(net.model(x), net.model.backward(g)) for net in nets]
    before = blas._openblas().get()

    def steps(k):
        wrong = 0
        for _ in range(1000):
            y, dx = nets[k](x), nets[k].backward(g)
            wrong += not (np.allclose(y, expected[k][0], rtol=1e-10, atol=1e-12)
                          and np.allclose(dx, expected[k][1], rtol=1e-10, atol=1e-12))
        return wrong, nets[k].parts

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        results = _in_threads([lambda: steps(0), lambda: steps(1)])
    finally:
        sys.setswitchinterval(interval)
    assert results == [(0, [(0, 1), (1, 2), (2, 3), (3, 4)])] * 2
    assert blas._openblas().get() == before


@needs_blas
def test_the_workers_grow_with_the_parts():
    """Two parts, then four: the object's own workers grow from one to three, and the four replicas
    run at once (on one worker they would wait for each other until the timeout)."""
    net = ThreadParallel(_small_net(0), threads=4, min_part_values=1, timeout=30)
    x = np.random.default_rng(0).standard_normal((4, 3, 6, 6))
    with nn.plain():
        expected = net.model(x)
    net(x[:2])
    assert net.parts == [(0, 1), (1, 2)]
    y, = _in_threads([lambda: net(x)], timeout=60)
    assert net.parts == [(0, 1), (1, 2), (2, 3), (3, 4)]
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@needs_blas
def test_one_model_from_two_threads_at_once_is_refused():
    """A call on the same object -- or on another ThreadParallel over the same model -- from a second
    thread while one runs is refused, naming the model and the thread (it used to give wrong numbers,
    silently). The running call is unharmed, and the model is free again after it."""
    inside, release = threading.Event(), threading.Event()

    class Gate(nn.Module):          # holds the first call inside the model until the test lets it go
        def forward(self, x):
            inside.set()
            assert release.wait(60)
            return x

        def backward(self, grad_out):
            return grad_out

    model = nn.Sequential(Gate(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).to(dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    net = ThreadParallel(model, threads=2, min_part_values=1)
    first = threading.Thread(target=lambda: setattr(first, "y", net(x)), name="the first caller", daemon=True)
    first.start()
    try:
        assert inside.wait(60)
        refused = (r"^ThreadParallel: its model \(Sequential\) is already in a forward or backward, on thread "
                   r"'the first caller'; one call at a time: give each thread its own model$")
        for caller in (net, ThreadParallel(model, threads=2, min_part_values=1)):
            with pytest.raises(RuntimeError, match=refused):
                caller(x)
            with pytest.raises(RuntimeError, match=refused):
                caller.backward(np.ones((4, 4, 6, 6)))
    finally:
        release.set()
    first.join(60)
    assert not first.is_alive() and net.parts == [(0, 2), (2, 4)]
    assert net.backward(np.ones_like(first.y)).shape == x.shape       # free again
    with nn.plain():
        np.testing.assert_allclose(first.y, model(x), rtol=1e-10, atol=1e-12)


def test_a_barrier_never_waits_forever():
    """A replica alone at the barrier gives up after the group's timeout, naming who never came."""
    group = ReplicaGroup(3, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"^ThreadParallel: replica 0 of 3 waited 0\.05 s at a batch norm for "
                                           r"replica\(s\) \[1, 2\], which never came" + ONLY_SLOW):
        _in_threads([lambda: group.gather(0, "mine")], timeout=60)
    assert ReplicaGroup(2).timeout == threads.BARRIER_TIMEOUT == ThreadParallel(nn.Conv2d(1, 1, 1)).timeout


@needs_blas
def test_a_replica_that_never_comes_is_a_clear_timeout_and_the_next_call_works():
    """Replica 1 is held (1 s) before the first batch norm while replica 0 waits there with a timeout of
    0.05 s: a TimeoutError naming replica 1 (not a BrokenBarrierError, not a hang). The next call, with
    no one late, gives the model's numbers."""
    late = [True]

    class LateOnce(nn.Module):
        def forward(self, x):
            if threads.replica_group()[1] == 1 and late[0]:
                late[0] = False
                time.sleep(1.0)
            return x

        def backward(self, grad_out):
            return grad_out

    model = nn.Sequential(LateOnce(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).to(dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    net = ThreadParallel(model, threads=2, min_part_values=1, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"^ThreadParallel: replica 0 of 2 waited 0\.05 s at a batch norm for "
                                           r"replica\(s\) \[1\], which never came" + ONLY_SLOW):
        _in_threads([lambda: net(x)], timeout=60)
    y, = _in_threads([lambda: net(x)], timeout=60)
    with nn.plain():
        np.testing.assert_allclose(y, model(x), rtol=1e-10, atol=1e-12)


@needs_blas
def test_overlapping_blas_blocks_give_the_setting_back():
    """Two threads' blocks overlapping, the first to open closing first: the setting from before
    both comes back only when the last closes (each block used to restore what it found)."""
    lib = blas._openblas()
    before = lib.get()
    lib.set(2)
    try:
        first, second = blas.blas_threads(1), blas.blas_threads(1)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert lib.get() == 1           # the second block is still open
        second.__exit__(None, None, None)
        assert lib.get() == 2
    finally:
        lib.set(before)
