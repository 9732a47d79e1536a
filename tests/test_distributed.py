"""Data parallelism: the world, the sampler, gradient averaging, SyncBatchNorm, and training under mpiexec.

Two kinds of test. The first half runs everywhere: a single process, and ranks simulated by
threads (``distributed.simulate``). The second half launches ``mpiexec -n 2`` on this machine
(127.0.0.1 only: Hydra starts both ranks locally) through subprocess with a timeout, running
the cases in tests/mpi_cases.py; it is skipped, saying so, where mpi4py or mpiexec is missing.
"""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import sigterm_when_ready

from minires import check_module, gpu_available, nn
from minires.parallel import mpi as D
from minires.parallel.sampler import DistributedSampler
from minires.train.data_parallel import BLAS_VARIABLES, blas_threads_per_process, configure
from minires.parallel.syncbn import convert_sync_batchnorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS")


# ----- a single process -----

def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_a_single_process_never_imports_mpi():
    code = ("import sys, minires.train, minires.parallel.mpi as d; w = d.get_world(); "
            "print(w.size, w.rank, 'mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "0", "False"]


def test_under_a_launcher_without_mpi4py_the_error_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"     # as if mpi4py were not installed
            "from minires.cli import main; sys.exit(main(['train', '--epochs', '1']))")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(PMI_SIZE="2", PMI_RANK="0"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "one of 2 processes, but mpi4py is not installed: pip install mpi4py mpich" in out.stderr


@pytest.mark.parametrize("env, size", [
    ({}, 1), ({"PMI_SIZE": "4"}, 4), ({"OMPI_COMM_WORLD_SIZE": "3"}, 3), ({"MV2_COMM_WORLD_SIZE": "2"}, 2),
    ({"PMIX_RANK": "0", "SLURM_STEP_NUM_TASKS": "8"}, 8), ({"SLURM_STEP_NUM_TASKS": "8"}, 1), ({"PMI_SIZE": "1"}, 1)])
def test_the_launchers_variables_give_the_world_size(env, size):
    assert D.launcher_size(env) == size


def test_the_single_world_is_the_identity():
    a = np.arange(4.0)
    assert D.SINGLE.allreduce(a) is a and a.tolist() == [0, 1, 2, 3]
    assert D.SINGLE.allgather_object("x") == ["x"] and D.get_world() is D.SINGLE


# ----- the sampler -----

def test_the_sampler_follows_torchs_rules():
    n, W = 10, 3
    parts = [DistributedSampler(n, W, r, seed=5) for r in range(W)]
    for s in parts:
        s.set_epoch(2)
    shards = [list(s) for s in parts]
    order = np.random.default_rng([5, 2]).permutation(n)            # the single-process order
    padded = np.concatenate([order, order[:2]])                      # ceil(10/3) = 4 each: padded by 2
    assert [len(s) for s in parts] == [4, 4, 4] and all(len(x) == 4 for x in shards)
    for r in range(W):
        assert shards[r] == padded[r::W].tolist()                    # dealt out like cards
    assert sorted(sum(shards, [])) == sorted(padded.tolist())
    dropped = [list(DistributedSampler(n, W, r, seed=5, drop_last=True)) for r in range(W)]
    assert [len(x) for x in dropped] == [3, 3, 3] and len(set(sum(dropped, []))) == 9
    parts[0].set_epoch(3)
    assert list(parts[0]) != shards[0]                               # a new permutation each epoch
    assert list(DistributedSampler(n, W, 1, shuffle=False)) == [1, 4, 7, 0]


def test_the_first_batches_of_all_ranks_are_the_single_process_batch():
    order, W, B = np.random.default_rng(0).permutation(100), 4, 8
    firsts = [DistributedSampler(100, W, r).split(order)[:B] for r in range(W)]
    assert sorted(np.concatenate(firsts).tolist()) == sorted(order[:W * B].tolist())


def test_the_sampler_refuses_a_bad_rank():
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        DistributedSampler(10, 2, 2)


# ----- ranks simulated by threads -----

def test_simulated_syncbn_over_two_ranks_is_batchnorm_over_the_whole_batch():
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((6, 3, 4, 4)) * 2 + 1, rng.standard_normal((6, 3, 4, 4))
    bn = nn.BatchNorm2d(3).to(dtype=np.float64)
    bn.weight.data[...] = [0.5, 2.0, -1.0]
    y = bn(x)
    dx = bn.backward(g)
    ranks = [convert_sync_batchnorm(nn.BatchNorm2d(3).to(dtype=np.float64)) for _ in range(2)]
    for r in ranks:
        r.weight.data[...] = [0.5, 2.0, -1.0]

    def step():
        w = D.get_world()
        m, part = ranks[w.rank], slice(3 * w.rank, 3 * w.rank + 3)
        return m(x[part]), m.backward(g[part]), m.weight.grad.copy()
    (y0, dx0, w0), (y1, dx1, w1) = D.simulate(2, step)
    np.testing.assert_allclose(np.concatenate([y0, y1]), y, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([dx0, dx1]), dx, atol=1e-12)
    np.testing.assert_allclose(w0 + w1, bn.weight.grad, atol=1e-12)     # the shares add up
    np.testing.assert_allclose(ranks[1].running_var, bn.running_var, atol=1e-12)


def test_simulated_gradient_averaging_is_one_big_batch():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)

    def grads(xb, yb):
        nn.manual_seed(0)
        lin, loss = nn.Linear(5, 3).to(dtype=np.float64), nn.CrossEntropyLoss()
        loss(lin(xb), yb)
        lin.backward(loss.backward())
        return lin

    full = grads(x, y)
    models = [grads(x[4 * r:4 * r + 4], y[4 * r:4 * r + 4]) for r in range(2)]
    D.simulate(2, lambda: D.average_gradients(models[D.get_world().rank]))
    for m in models:
        np.testing.assert_allclose(m.weight.grad, full.weight.grad, atol=1e-15)
        np.testing.assert_allclose(m.bias.grad, full.bias.grad, atol=1e-15)


def test_simulated_rank_that_raises_ends_every_rank():
    def work():
        w = D.get_world()
        if w.rank == 1:
            raise ValueError("rank 1 broke")
        w.allreduce(np.ones(2))                 # would wait for rank 1 forever
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="rank 1 broke"):
        D.simulate(2, work)
    assert time.perf_counter() - t0 < 10


def test_the_consistency_check_names_the_first_difference():
    def check():
        w = D.get_world()
        facts = D.model_facts(nn.Linear(3, 2 + w.rank), {"lr": 0.1})
        D.check_same_everywhere(facts)
    with pytest.raises(RuntimeError, match=r"parameter weight is \(\(2, 3\), 'float32'\) on rank 0 but "
                                           r"\(\(3, 3\), 'float32'\) on rank 1"):
        D.simulate(2, check)
    D.simulate(2, lambda: D.check_same_everywhere(D.model_facts(nn.Linear(3, 2), {"lr": 0.1})))  # agree: quiet


def test_broadcast_state_copies_rank_0():
    models = [nn.Linear(3, 2) for _ in range(2)]
    models[1].weight.data[...] = 7
    D.simulate(2, lambda: D.broadcast_state(models[D.get_world().rank]))
    np.testing.assert_array_equal(models[0].weight.data, models[1].weight.data)
    assert not np.any(models[1].weight.data == 7)


# ----- SyncBatchNorm on one process, and the config -----

def test_syncbn_on_one_process_is_batchnorm_and_passes_a_gradient_check(rng):
    x = rng.standard_normal((3, 4, 3, 3)) + 2
    bn = nn.BatchNorm2d(4).to(dtype=np.float64)
    sync = convert_sync_batchnorm(nn.BatchNorm2d(4).to(dtype=np.float64))
    np.testing.assert_allclose(sync(x), bn(x), atol=1e-13)
    assert check_module(sync, x).ok
    assert check_module(sync.eval(), x).ok


def test_convert_keeps_parameters_keys_and_names():
    from minires.models import resnet20
    model = resnet20(num_classes=10, in_channels=1)
    keys, weight = list(model.state_dict()), model.layer2[1].bn2.weight
    convert_sync_batchnorm(model)
    assert list(model.state_dict()) == keys                       # a checkpoint loads into either
    assert model.layer2[1].bn2.weight is weight and model.layer2[1].bn2.path == "layer2.1.bn2"
    assert all(m.group is not None for m in model.modules() if isinstance(m, nn.BatchNorm2d))   # synchronised


def test_configure_records_the_world_and_a_resume_keeps_the_global_batch():
    class World:
        size = 4
    cfg = {"batch_size": 32, "world_size": 2}
    assert configure(cfg, World, resume=False) == {"batch_size": 32, "world_size": 4}
    assert configure(cfg, World, resume=True) == {"batch_size": 16, "world_size": 4}   # 64 = 16 x 4
    World.size = 3
    with pytest.raises(ValueError, match="global batch of 64 .* cannot be split evenly over 3 processes"):
        configure(cfg, World, resume=True)


# ----- under mpiexec -n 2 -----

def _mpiexec():
    """mpiexec next to this Python (a venv with the mpich wheel), else on PATH; None without mpi4py."""
    if importlib.util.find_spec("mpi4py") is None:
        return None
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
BLAS_ONE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpi4py or mpiexec is not installed here "
                                                       "(pip install mpi4py mpich), so nothing runs under mpiexec")


def mpirun(args, timeout=300, n=2, blas=BLAS_ONE):
    """``mpiexec -n 2 ARGS`` on this machine; never waits longer than ``timeout`` seconds.
    ``blas``: the BLAS variables to set (by default one thread each); None sets none."""
    cmd = [MPIEXEC, "-n", str(n)] + args
    env = {k: v for k, v in _clean_env(HYDRA_HOST_FILE="").items() if k not in BLAS_VARIABLES}
    env.update(blas or {})
    env.pop("HYDRA_HOST_FILE")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def run_case(tmp_path, case, *extra, timeout=300, blas=BLAS_ONE):
    out = tmp_path / f"{case}.json"
    proc = mpirun([sys.executable, os.path.join(ROOT, "tests", "mpi_cases.py"), case, str(out), *extra], timeout,
                  blas=blas)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    return run_case(tmp_path_factory.mktemp("mpi"), "equivalence")


@needs_mpi
def test_two_ranks_of_32_equal_one_of_64_without_batch_norm(equivalence):
    found = equivalence["plain"]
    print(f"3 SGD steps, float64: largest parameter difference {found['vs_single']:.1e}")
    assert equivalence["world_size"] == 2
    assert found["vs_single"] < 1e-10 and found["between_ranks"] == 0


@needs_mpi
def test_two_ranks_with_syncbn_equal_one_resnet_of_64(equivalence):
    found = equivalence["syncbn"]
    print(f"ResNet-20 + SyncBatchNorm: parameters {found['vs_single']:.1e}, running statistics "
          f"{found['buffers_vs_single']:.1e} from the single process")
    assert found["vs_single"] < 1e-10 and found["buffers_vs_single"] < 1e-10
    assert found["between_ranks"] == 0 and found["buffers_between_ranks"] == 0


@needs_mpi
def test_without_syncbn_the_ranks_statistics_differ_and_so_does_the_result(equivalence):
    found, stats = equivalence["bn"], equivalence["bn_statistics"]
    print(f"plain BatchNorm2d, 32 images per rank: the first layer's per-channel means are up to "
          f"{stats['mean_rank_vs_global']:.3f} from the global batch's, its variances up to "
          f"{stats['var_rank_vs_global']:.1%}; after 3 steps the parameters differ by {found['vs_single']:.3f} "
          f"and the running statistics by {found['buffers_vs_single']:.3f}")
    assert stats["mean_rank_vs_global"] > 1e-3 and stats["var_rank_vs_global"] > 1e-3
    assert found["vs_single"] > 1e-4
    assert found["between_ranks"] == 0               # the gradients are still averaged: parameters agree
    assert found["buffers_between_ranks"] > 1e-4     # ... but each rank's running statistics are its own


@needs_mpi
def test_syncbn_passes_a_gradient_check_across_ranks(tmp_path):
    errors = run_case(tmp_path, "gradcheck")
    print(errors)
    assert errors["input"] < 1e-6 and errors["weight"] < 1e-6 and errors["bias"] < 1e-6
    assert errors["input_gradient_norm"] > 0.1       # not a trivially zero gradient


@needs_mpi
def test_different_settings_on_the_ranks_are_named(tmp_path):
    messages = run_case(tmp_path, "mismatch")["messages"]
    assert len(messages) == 2 and messages[0] == messages[1]
    assert "option 'lr' is 0.1 on rank 0 but 0.2 on rank 1" in messages[0]


@needs_mpi
def test_a_rank_that_raises_ends_every_rank(tmp_path):
    t0 = time.perf_counter()
    proc = mpirun([sys.executable, os.path.join(ROOT, "tests", "mpi_cases.py"), "fail", str(tmp_path / "x.json")],
                  timeout=120)
    assert proc.returncode != 0
    assert "[rank 1 of 2]" in proc.stderr and "ValueError: rank 1 broke on purpose" in proc.stderr
    assert not (tmp_path / "x.json").exists() and time.perf_counter() - t0 < 120


@needs_mpi
def test_mpiexec_minires_train_learns_the_digits_and_writes_one_run_folder(tmp_path):
    """The short version of the 30-epoch comparison in benchmarks/README.md: 2 epochs, 2 x 32 images."""
    out = tmp_path / "run"
    proc = mpirun([sys.executable, "-m", "minires.cli", "train", "--epochs", "2", "--batch-size", "32",
                   "--out", str(out), "--no-progress", "--no-plot"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("data parallel: world_size 2") and "global batch 64" in lines[0]
    assert sum(line.startswith("epoch   2/2") for line in lines) == 1          # rank 0 alone prints
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert sorted(os.listdir(out)) == ["best.npz", "config.json", "last.npz", "metrics.csv"]
    rows = (out / "metrics.csv").read_text().splitlines()
    last = dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert float(last["val_acc"]) >= 0.9, last                                # validation accuracy after 2 epochs
    tested = [dict(zip(rows[0].split(","), r.split(","))) for r in rows[1:]]
    assert sum(r["test_acc"] != "" for r in tested) == 1, rows                # the test set once, by rank 0
    assert "test accuracy" in proc.stdout and proc.stdout.count("measured once, at the end") == 1


@needs_mpi
def test_a_rank_failing_in_the_cli_ends_both(tmp_path):
    """MPMD: rank 0 trains the digits, rank 1 asks for a CIFAR-10 that is not there."""
    common = [sys.executable, "-m", "minires.cli", "train", "--epochs", "1", "--out", str(tmp_path / "run"),
              "--no-progress"]
    cmd = common + [":", "-n", "1"] + common + ["--data", "cifar10", "--data-root", str(tmp_path / "none"),
                                                 "--no-download"]
    proc = mpirun(cmd, timeout=120, n=1)
    assert proc.returncode != 0
    assert "minires train: error:" in proc.stderr and "cifar" in proc.stderr.lower()


@needs_mpi
def test_resume_on_the_same_number_of_processes_is_exact_and_on_one_equal_to_rounding(tmp_path):
    from minires.train import fit
    from minires.weights import load_checkpoint
    run_case(tmp_path, "resume", str(tmp_path))
    full, _ = load_checkpoint(tmp_path / "full" / "last.npz")
    same, meta = load_checkpoint(tmp_path / "part2" / "last.npz")
    for key in full:
        np.testing.assert_array_equal(full[key], same[key], err_msg=key)     # bit for bit
    fit(out=str(tmp_path / "part1"), resume=True, progress=False, plot=False)  # 2 processes -> this one
    one, meta1 = load_checkpoint(tmp_path / "part1" / "last.npz")
    worst = max(float(np.max(np.abs(full[k] - one[k]))) for k in full if full[k].dtype.kind == "f")
    print(f"resumed on 1 process instead of 2: parameters within {worst:.1e} of the uninterrupted run (float32)")
    assert worst < 1e-3 and meta1["config"]["world_size"] == 1 and meta1["config"]["batch_size"] == 256
    assert abs(meta1["history"][-1]["train_loss"] - meta["history"][-1]["train_loss"]) < 1e-4


@needs_mpi
def test_a_rank_with_other_data_stops_every_rank_before_training(tmp_path):
    """Rank 1's digits differ by one pixel (trained silently before), then by one image (MPICH's
    'Message truncated', or a hang): the ranks compare content hashes of what they loaded."""
    t0 = time.perf_counter()
    messages = run_case(tmp_path, "other_data", timeout=120)["messages"]
    assert messages[0] == messages[1] and len(messages[0]) == 2          # every rank stopped, both times
    for message in messages[0]:
        assert message.startswith("the ranks loaded different data sets: rank 1's (digits, bundled with "
                                  "scikit-learn) has content sha256 "), message
        assert "every rank must load the same data set" in message and len(message.splitlines()) == 1
    assert time.perf_counter() - t0 < 60


def _stale_copy(tmp_path):
    """Run folders a and b of one run: a stopped at step 4, b a copy of it when it stopped at step 2."""
    from minires.train import fit
    a, b = tmp_path / "a", tmp_path / "b"

    def interrupt_at(n):
        return lambda step, loss: os.kill(os.getpid(), signal.SIGINT) if step == n else None
    fit("resnet20", "digits", out=str(a), epochs=1, batch_size=256, progress=False, plot=False, callback=interrupt_at(2))
    shutil.copytree(a, b)
    fit(out=str(a), resume=True, progress=False, plot=False, callback=interrupt_at(4))
    return a, b


@needs_mpi
def test_a_stale_checkpoint_on_one_rank_ends_every_rank(tmp_path):
    """Rank 0 resumes a, rank 1 b, a stale copy of it (every rank reads its own --resume folder):
    rank 0 would stop where rank 1 still waits in an all-reduce -- a hang, before the check."""
    a, b = _stale_copy(tmp_path)
    resume = [sys.executable, "-m", "minires.cli", "train", "--no-progress", "--no-plot", "--resume"]
    t0 = time.perf_counter()
    proc = mpirun(resume + [str(a), ":", "-n", "1"] + resume + [str(b)], timeout=120, n=1)
    assert proc.returncode != 0
    assert (f"the ranks loaded different checkpoints: rank 1's ({b / 'last.npz'}) has content sha256 "
            in proc.stderr), proc.stderr
    assert f"rank 0's ({a / 'last.npz'}) has" in proc.stderr and "Traceback" not in proc.stderr
    assert time.perf_counter() - t0 < 60
    lock = a / "run.lock"
    if lock.exists():   # rank 1's MPI_Abort may end rank 0 before it removed its lock: then the lock is stale
        from minires.train.lock import process_running
        pid, deadline = json.loads(lock.read_text())["pid"], time.perf_counter() + 20
        while process_running(pid) and time.perf_counter() < deadline:    # the killed rank may still be ending
            time.sleep(0.1)
        assert not process_running(pid), lock.read_text()


@needs_mpi
def test_one_blas_thread_per_process_by_default_and_a_warning_when_the_cores_are_oversubscribed(tmp_path):
    pytest.importorskip("minires.parallel.threads").blas_controllable() or pytest.skip("no OpenBLAS to set")
    found = run_case(tmp_path, "blas", blas=None)                     # no BLAS variable set
    assert found["inside"] == 1 and found["after"] == found["before"], found
    cores = os.cpu_count()
    proc = mpirun([sys.executable, os.path.join(ROOT, "tests", "mpi_cases.py"), "blas", str(tmp_path / "x.json")],
                  blas={"OPENBLAS_NUM_THREADS": str(cores)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning:") == 1                            # the machine's first process says it
    assert (f"warning: 2 processes on this machine x {cores} BLAS threads (OPENBLAS_NUM_THREADS={cores}) = "
            f"{2 * cores} threads on {cores} cores") in proc.stderr


@needs_mpi
def test_sigterm_to_mpiexec_stops_every_rank_at_the_same_batch_saves_and_exits_143(tmp_path):
    """What SLURM does to a job: SIGTERM to mpiexec, which passes it to every rank (issue 27: they
    died at once, the epoch lost)."""
    cmd = [MPIEXEC, "-n", "2", sys.executable, os.path.join(ROOT, "tests", "mpi_cases.py"), "sigterm",
           str(tmp_path / "found.json"), str(tmp_path), "outside"]
    env = {k: v for k, v in _clean_env(**BLAS_ONE).items()}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = sigterm_when_ready(proc, tmp_path / "ready")
    assert proc.returncode == 143, stdout + stderr
    found = json.loads((tmp_path / "found.json").read_text())
    assert found["stopped_by"] == ["SIGTERM", "SIGTERM"] and len(set(found["last_steps"])) == 1, found
    assert stdout.count("SIGTERM: finishing this batch") == 1                     # rank 0 alone prints
    from minires.weights import load_checkpoint
    position = load_checkpoint(tmp_path / "run" / "last.npz")[1]["position"]
    assert position["epoch"] * 22 + position["batch"] == found["last_steps"][0]   # 22 steps of 2 x 32 an epoch


@needs_mpi
def test_sigterm_on_one_rank_stops_both_at_the_same_batch(tmp_path):
    found = _run_case_exiting(tmp_path, "sigterm", 143, str(tmp_path), "rank1")   # signalled after step 3
    assert found["stopped_by"] == ["SIGTERM", "SIGTERM"] and found["last_steps"] == [4, 4], found   # agreed in 4


@needs_mpi
def test_a_run_that_diverges_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    (message0, marked0), (message1, marked1) = run_case(tmp_path, "diverge")["errors"]
    assert message0 == message1 and marked0 and marked1
    assert message0.startswith("training diverged at step ") and "(on rank " in message0, message0


@needs_mpi
def test_an_error_before_training_on_one_rank_is_raised_on_every_rank(tmp_path):
    """Every rank raises (none waits for another), rank 0 naming rank 1's reason: the command line
    prints rank 0's alone (errors marked ``raised_on_every_rank``)."""
    errors = run_case(tmp_path, "refused", str(tmp_path))["errors"]
    empty = tmp_path / "empty" / "last.npz"
    assert errors[0] == ["RuntimeError", f"rank 1 of 2 stopped before training: nothing to resume: {empty} "
                                         "does not exist", True]
    assert errors[1] == ["FileNotFoundError", f"nothing to resume: {empty} does not exist", True]


def _run_case_exiting(tmp_path, case, code, *extra):
    out = tmp_path / f"{case}.json"
    proc = mpirun([sys.executable, os.path.join(ROOT, "tests", "mpi_cases.py"), case, str(out), *extra])
    assert proc.returncode == code, proc.stdout + proc.stderr
    return json.loads(out.read_text())


class Machine:
    """A world for blas_threads_per_process: size processes, local_size of them on this machine."""

    def __init__(self, size, local_size):
        self.size, self.local_size = size, local_size


@pytest.mark.parametrize("world, env, controllable, threads, warning", [
    (Machine(1, 1), {}, True, None, None),                                # one process: its BLAS as it is
    (Machine(2, 2), {}, True, 1, None),                                   # mpiexec: one thread each
    (Machine(8, 2), {"OMP_NUM_THREADS": "1"}, True, None, None),          # the environment chose
    (Machine(2, 2), {"OPENBLAS_NUM_THREADS": "2"}, True, None, "x 2 BLAS threads (OPENBLAS_NUM_THREADS=2) = 4"),
    (Machine(2, 2), {}, False, None, "this NumPy's BLAS cannot be set from Python"),
    (Machine(4, 4), {}, True, 1, "4 processes on this machine x 1 BLAS thread (one each, and still more "
                                 "processes than cores) = 4 threads on 2 cores"),
])
def test_blas_threads_per_process(world, env, controllable, threads, warning):
    got = blas_threads_per_process(world, environ=env, cores=2, controllable=controllable)
    assert got[0] == threads and (got[1] is None if warning is None else warning in got[1]), got


@needs_mpi
@pytest.mark.skipif(not gpu_available(), reason="no GPU here: CuPy is not installed or no CUDA device answers")
def test_gpu_ranks_all_reduce_through_nccl_or_host_buffers(tmp_path):
    found = run_case(tmp_path, "gpu")
    expected = (np.arange(6) * 3).tolist()                      # rank 0's x1 + rank 1's x2
    assert found["host"] == expected and not found["host_used_nccl"]
    assert found["nccl"] == expected                            # NCCL, or host buffers where NCCL refused
    print(f"NCCL used: {found['nccl_used_nccl']} (two ranks on one GPU: NCCL refuses, host buffers then)")
    assert found["syncbn_cpu_vs_gpu"] < 1e-12
