"""What a run trusts, checked (issue 26): a resumed checkpoint must be the run's own and hold what
its configuration gives; one run writes a run folder at a time; a full disk names the file.

Every case ends in one line naming the file or the value, within seconds, and leaves the run
folder as it was. (The ranks of mpiexec agreeing on data and checkpoint: tests/test_distributed.py.)
"""
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn (pip install scikit-learn)")

from minires.cli import main  # noqa: E402
from minires.train import fit  # noqa: E402
from minires.train.lock import LOCK_NAME, RunLock, RunLockError  # noqa: E402
from minires.train.runcheck import OPTION_RULES, CheckpointError  # noqa: E402
from minires.weights import atomic_write, load_checkpoint, save_checkpoint  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = dict(progress=False, plot=False)


def interrupt_at(step_to_stop):
    """A callback that presses Ctrl-C after the given step."""
    def callback(step, loss):
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)
    return callback


def no_training(*args):
    raise AssertionError("training started")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A resnet20 run of 2 epochs on the digits, and a resnet32 run stopped after its first step."""
    root = tmp_path_factory.mktemp("runs")
    fit("resnet20", "digits", out=str(root / "r20"), epochs=2, batch_size=256, **QUICK)
    fit("resnet32", "digits", out=str(root / "r32"), epochs=2, batch_size=256, callback=interrupt_at(1), **QUICK)
    return root


@pytest.fixture
def run(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs / "r20", copy)
    return copy


def files(folder):
    return {p: (folder / p).read_bytes() for p in os.listdir(folder)}


def refused(run, capsys, *texts):
    """``minires train --resume RUN``: exit 1, one line on stderr holding every text, nothing trained or written."""
    before = files(run)
    t0 = time.perf_counter()
    code = main(["train", "--resume", str(run), "--no-progress", "--no-plot"])
    out, err = capsys.readouterr()
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    for text in texts:
        assert text in err, err
    assert "finished" not in out and "resuming" not in out
    assert files(run) == before and time.perf_counter() - t0 < 10
    return err


def tamper(run, edit):
    arrays, meta = load_checkpoint(run / "last.npz")
    edit(meta, arrays)
    save_checkpoint(run / "last.npz", arrays, meta)


# ----- the checkpoint must be the run's own: config.json says which run it is

def test_another_models_checkpoint_is_refused(run, runs, capsys):
    shutil.copy(runs / "r32" / "last.npz", run / "last.npz")
    refused(run, capsys, f"{run / 'last.npz'} is not this run's checkpoint: it holds model 'resnet32', "
                         f"but {run / 'config.json'} says model 'resnet20'")


@pytest.mark.parametrize("write, message", [
    (lambda c: json.dumps(dict(c, model="resnet56")), "it holds model 'resnet20', but {config} says model 'resnet56'"),
    (lambda c: json.dumps(dict(c, lr=0.5, epochs=9)), "it holds epochs 2, lr 0.1, but {config} says epochs 9, lr 0.5"),
    (lambda c: json.dumps(dict(c, batch_size=128)), "global batch 256, but {config} says global batch 128"),
    (lambda c: json.dumps(dict(c, evil=1)), "it holds evil nothing, but {config} says evil 1"),
    (lambda c: "garbage {", "{config} cannot be read as the run's configuration (Expecting value"),
    (lambda c: "[1, 2]", "{config} must hold a JSON object of options, got [1, 2]"),
    (None, "{config} is missing, so nothing says that {last} belongs to this run"),
])
def test_config_json_edited_garbage_or_deleted_is_refused(run, capsys, write, message):
    config = run / "config.json"
    if write is None:
        config.unlink()
    else:
        config.write_text(write(json.loads(config.read_text())))
    refused(run, capsys, message.format(config=config, last=run / "last.npz"))


def test_a_run_resumed_on_other_processes_keeps_its_global_batch(run, capsys):
    """config.json says 256 x 1 process; a checkpoint of the run resumed on 2 processes says 128 x 2."""
    tamper(run, lambda meta, arrays: meta["config"].update(batch_size=128, world_size=2))
    fit(out=str(run), resume=True, callback=no_training, **QUICK)      # a finished run: nothing to train


# ----- every optimizer and schedule value: the option rules, then what the configuration gives

@pytest.mark.parametrize("edit, message", [
    (lambda m: m["optimizer"].update(weight_decay=50),
     "optimizer.weight_decay: weight decay must be a finite number >= 0 and at most 1 "),
    (lambda m: m["optimizer"].update(weight_decay=0.001),
     "optimizer.weight_decay is 0.001, but the run's configuration gives 0.0005"),
    (lambda m: m["schedule"].update(base_lr=3), "schedule.base_lr is 3, but the run's configuration gives 0.1"),
    (lambda m: m["optimizer"].update(momentum=1.5), "optimizer.momentum: momentum must be a number in [0, 1), got 1.5"),
    (lambda m: m["optimizer"].update(nesterov=True), "optimizer.nesterov is True, but the run's configuration gives False"),
    (lambda m: m["schedule"].update(total_steps=0), "schedule.total_steps: total_steps must be a positive integer, got 0"),
    (lambda m: m["schedule"].update(total_steps=11), "schedule.total_steps is 11, but the run's configuration gives 10"),
    (lambda m: m["schedule"].update(t=3), "position.epoch 2 and position.batch 0 make 10 steps (5 per epoch), "
                                          "but schedule.t counts 3"),
    (lambda m: m["optimizer"].update(step_count=3), "optimizer.step_count is 3, but the run's configuration gives 10"),
    (lambda m: m["schedule"].update(kind="step"), "schedule.kind is 'step', but the run's configuration gives 'cosine'"),
    (lambda m: m["optimizer"].update(evil=1), "optimizer holds 'evil', which this run does not have"),
    (lambda m: m["optimizer"].pop("dampening"), "optimizer.dampening is missing (the run's configuration gives 0.0)"),
    (lambda m: m["history"].append("x"), "history must be a list of per-epoch dicts, got a list holding str"),
    (lambda m: m["history"][0].update(val_loss="x"), "history[0].val_loss must be a number >= 0, got 'x'"),
    (lambda m: m["history"][1].update(val_acc=7), "history[1].val_acc must be an accuracy in [0, 1], got 7"),
    (lambda m: m["history"][1].update(epoch=5), "history[1].epoch must be 2, got 5"),
    (lambda m: m.update(best=0.25), "best is 0.25, but the best validation accuracy in history is"),
])
def test_the_optimizer_schedule_and_history_are_checked_against_the_configuration(run, capsys, edit, message):
    tamper(run, lambda meta, arrays: edit(meta))
    refused(run, capsys, f"{run / 'last.npz'}: cannot use this checkpoint: {message}")


def test_several_problems_are_listed_each_once(run, capsys):
    tamper(run, lambda meta, arrays: meta["optimizer"].update(momentum=0.999, nesterov=True))
    with pytest.raises(CheckpointError) as e:
        fit(out=str(run), resume=True, callback=no_training, **QUICK)
    assert str(e.value).splitlines()[1:] == [
        "  - optimizer.momentum is 0.999, but the run's configuration gives 0.9",
        "  - optimizer.nesterov is True, but the run's configuration gives False"]


def test_a_stopped_runs_position_must_match_its_steps(runs, tmp_path, capsys):
    run = tmp_path / "r32"
    shutil.copytree(runs / "r32", run)                   # stopped after step 1 of 5
    tamper(run, lambda meta, arrays: meta["position"].update(batch=3))
    refused(run, capsys, "position.epoch 0 and position.batch 3 make 3 steps (5 per epoch), but schedule.t counts 1")


def test_weights_that_are_not_finite_are_refused(run, capsys):
    tamper(run, lambda meta, arrays: arrays["model/fc.weight"].__setitem__((0, 0), np.nan))
    refused(run, capsys, "model/fc.weight holds values that are not finite (NaN or infinity): 1 of 640")


def test_the_command_line_and_the_checkpoint_share_one_rule(run, capsys):
    assert main(["train", "--weight-decay", "50", "--out", str(run.parent / "new")]) == 2
    from_cli = capsys.readouterr().err
    tamper(run, lambda meta, arrays: meta["optimizer"].update(weight_decay=50))
    from_file = refused(run, capsys)
    rule = OPTION_RULES["weight_decay"].problem(50.0)
    assert rule in from_cli and rule.replace("50.0", "50") in from_file


def test_a_resumed_run_that_is_its_own_still_resumes(run, capsys):
    assert main(["train", "--resume", str(run), "--no-progress", "--no-plot"]) == 0
    assert "resuming" in capsys.readouterr().out and not (run / LOCK_NAME).exists()


# ----- one writer per run folder

def write_lock(run, pid, host=None):
    run.mkdir(exist_ok=True)
    (run / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "since": "then"}))


@pytest.fixture
def other_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_folder_locked_by_a_running_process_is_refused(run, other_process):
    write_lock(run, other_process)
    before = files(run)
    with pytest.raises(RunLockError, match=rf"{run} is in use by another run \(process {other_process} on host "):
        fit(out=str(run), resume=True, callback=no_training, **QUICK)
    with pytest.raises(RunLockError, match="in use by another run"):
        fit("resnet20", "digits", out=str(run.parent / "run"), epochs=1, callback=no_training, **QUICK)
    assert files(run) == before


def test_a_lock_from_another_host_is_refused_with_the_host_named(run):
    write_lock(run, 1, host="node-17")
    with pytest.raises(RunLockError, match=f"{run} is locked by process 1 on host 'node-17', since 'then', another "
                                           f"host, where minires cannot see whether it still runs; if it does not, "
                                           f"delete {run / LOCK_NAME}"):
        fit(out=str(run), resume=True, callback=no_training, **QUICK)


def test_a_garbage_lock_is_refused(run):
    (run / LOCK_NAME).write_text("half")
    with pytest.raises(RunLockError, match="run.lock exists but does not say which run holds it .'half'.; if no run"):
        fit(out=str(run), resume=True, callback=no_training, **QUICK)


def test_a_stale_lock_is_explained_and_taken_over(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = tmp_path / "run"
    write_lock(run, int(dead.stdout))
    fit("resnet20", "digits", out=str(run), epochs=1, batch_size=512, **QUICK)
    out = capsys.readouterr().out
    assert f"note: {run / LOCK_NAME} was left by process {int(dead.stdout)} on host " in out
    assert "which no longer runs (killed?); taking the folder over" in out
    assert not (run / LOCK_NAME).exists() and LOCK_NAME not in out.split("run folder")[-1]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_the_lock_is_released_on_an_error_and_on_a_second_ctrl_c(tmp_path, error):
    def fail(step, loss):
        assert (tmp_path / "run" / LOCK_NAME).exists()
        raise error("stop")
    with pytest.raises(error):
        fit("resnet20", "digits", out=str(tmp_path / "run"), epochs=1, batch_size=512, callback=fail, **QUICK)
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_lock_taken_twice_in_one_process_is_refused(tmp_path):
    with RunLock(str(tmp_path)):
        with pytest.raises(RunLockError, match=f"process {os.getpid()} on host"):
            RunLock(str(tmp_path)).__enter__()
    assert os.listdir(tmp_path) == []


def test_two_runs_on_one_out_the_second_is_refused(tmp_path, capsys):
    """The issue's case: run A trains in --out; run B, started on the same --out, is refused at once
    (before, both succeeded and left A's config.json beside B's checkpoints and metrics)."""
    out = tmp_path / "run"
    a = subprocess.Popen([sys.executable, "-m", "minires.cli", "train", "--out", str(out), "--epochs", "30",
                          "--no-progress", "--no-plot"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.time() + 60
        while not (out / "config.json").exists() and time.time() < deadline and a.poll() is None:
            time.sleep(0.1)
        assert (out / LOCK_NAME).exists()
        assert main(["train", "--out", str(out), "--epochs", "2", "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"is in use by another run (process {a.pid} on host" in err and len(err.splitlines()) == 1
    finally:
        a.send_signal(signal.SIGINT)                  # Ctrl-C: A finishes its batch, saves and ends
        stdout, stderr = a.communicate(timeout=60)
    assert a.returncode == 130, stderr              # stopped by Ctrl-C, after saving
    assert json.loads((out / "config.json").read_text())["epochs"] == 30     # A's, untouched
    assert not (out / LOCK_NAME).exists()


# ----- a full disk names the file

def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "last.npz"
    path.write_bytes(b"the previous checkpoint")
    with pytest.raises(OSError) as e:
        with atomic_write(path) as f:
            f.write(b"half a")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert e.value.errno == errno.ENOSPC
    assert str(e.value) == (f"[Errno 28] No space left on device: cannot write {path} (its folder's disk is full; "
                            "the previous last.npz, if any, is unchanged)")
    assert path.read_bytes() == b"the previous checkpoint" and os.listdir(tmp_path) == ["last.npz"]


def test_a_full_disk_during_training_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "1", "--no-progress", "--no-plot"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"minires train: error: [Errno 28] No space left on device: cannot write {out / 'config.json'} "
                   "(its folder's disk is full; the previous config.json, if any, is unchanged)")
    assert not out.exists()        # nothing left behind: no temporary file, no lock, no empty folder


@pytest.mark.parametrize("stop, options", [(2, dict(schedule="step")), (2, dict(schedule="constant")),
                                           (7, dict(warmup_epochs=1, momentum=0.0, weight_decay=0.0))])
def test_a_runs_own_checkpoint_passes_every_check_for_every_schedule(tmp_path, capsys, stop, options):
    """No false alarm: stopped mid-epoch (for the warm-up, after it), resumed, it trains on."""
    run = tmp_path / "run"
    fit("resnet20", "digits", out=str(run), epochs=2, batch_size=256, callback=interrupt_at(stop), **options, **QUICK)
    position = load_checkpoint(run / "last.npz")[1]["position"]
    assert (position["epoch"], position["batch"]) == divmod(stop, 5)          # 5 steps an epoch
    fit(out=str(run), resume=True, callback=interrupt_at(stop + 1), **QUICK)
    assert "resuming" in capsys.readouterr().out
    assert load_checkpoint(run / "last.npz")[1]["schedule"]["t"] == stop + 1
