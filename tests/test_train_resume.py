"""Resuming from a checkpoint someone may have edited: everything is checked before anything
is touched, one sentence per problem; no download; a folder that cannot be written is
refused before training; the litter of killed writes is cleaned up."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn (pip install scikit-learn)")

from minires.train import runcheck  # noqa: E402
from minires.cli import main  # noqa: E402
from minires.train.runcheck import CheckpointError  # noqa: E402
from minires.train import fit  # noqa: E402
from minires.weights import load_checkpoint, save_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    fit("resnet20", "digits", out=str(run), epochs=1, batch_size=256, progress=False, plot=False)
    return run


@pytest.fixture
def run(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def tamper(run, edit):
    arrays, meta = load_checkpoint(run / "last.npz")
    edit(meta, arrays)
    save_checkpoint(run / "last.npz", arrays, meta)
    return {p: (run / p).read_bytes() for p in os.listdir(run)}


def no_training(*args):
    raise AssertionError("training started")


@pytest.mark.parametrize("change, message", [
    ({"batch_size": 0}, "batch size must be a positive integer, got 0"),
    ({"model": "resnet19"}, "unknown model 'resnet19'; choose one of: resnet18"),
    ({"data": "imagenet"}, "unknown data set 'imagenet'"),
    ({"evil": "os.system"}, "unknown training options: evil"),
    ({"lr": "0.1"}, "the learning rate must be a positive number, got '0.1'"),
    ({"epochs": 10 ** 30}, "epochs must be a positive integer"),
    ({"momentum": 5}, "momentum must be a number in [0, 1), got 5"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"schedule": "exponential"}, "schedule must be one of step, cosine, constant"),
    ({"warmup_epochs": 1}, "warmup epochs (1) must be fewer than epochs (1)"),
])
def test_a_tampered_config_is_refused_before_anything_is_touched(run, change, message):
    before = tamper(run, lambda meta, arrays: meta["config"].update(change))
    with pytest.raises(CheckpointError) as e:
        fit(out=str(run), resume=True, progress=False, plot=False, callback=no_training)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1
    assert {p: (run / p).read_bytes() for p in os.listdir(run)} == before


def test_every_problem_is_named_once(run):
    def edit(meta, arrays):
        meta["config"].update(batch_size=0, model="resnet19")
        meta["position"]["epoch"] = -1
        meta["best"] = "high"
    tamper(run, edit)
    with pytest.raises(CheckpointError) as e:
        fit(out=str(run), resume=True, progress=False, plot=False)
    lines = str(e.value).splitlines()
    assert "(4 problems)" in lines[0] and len(lines) == 5
    for text in ("batch size", "unknown model", "position.epoch must be an integer in [0, 1], got -1",
                 "best must be an accuracy in [0, 1], got 'high'"):
        assert sum(text in line for line in lines[1:]) == 1, text


@pytest.mark.parametrize("edit, message", [
    (lambda m, a: m["position"].update(rng={"bit_generator": "MT19937"}), "not a PCG64 generator state"),
    (lambda m, a: m["position"].update(rng=None), "must both be set"),
    (lambda m, a: m.update(history="everything"), "history must be a list"),
    (lambda m, a: m.update(format="other"), "not a minires training checkpoint"),
    (lambda m, a: m.update(schedule=[1]), "schedule must be a dict"),
])
def test_a_tampered_position_is_refused(run, edit, message):
    def stopped_mid_epoch(meta, arrays):
        meta["position"].update(rng=np.random.default_rng(0).bit_generator.state,
                                stats=dict(loss=1.0, correct=1, seen=2, seconds=0.5, lr=0.1))
        edit(meta, arrays)
    tamper(run, stopped_mid_epoch)
    with pytest.raises(CheckpointError, match=message):
        fit(out=str(run), resume=True, progress=False, plot=False, callback=no_training)


def test_weights_of_the_wrong_shape_load_nothing(run):
    before = tamper(run, lambda meta, arrays: arrays.update({"model/fc.weight": np.zeros((3, 3), np.float32)}))
    with pytest.raises(CheckpointError, match=r"last.npz: its weights do not fit a resnet20 for digits "
                                              r"\(10 classes, 1 input channel\).*nothing was loaded.*fc.weight"):
        fit(out=str(run), resume=True, progress=False, plot=False, callback=no_training)
    assert {p: (run / p).read_bytes() for p in os.listdir(run)} == before


def test_a_tampered_data_name_never_starts_a_download(run, tmp_path, monkeypatch):
    from minires.data import cifar, download
    def no_download(*args, **kwargs):
        raise AssertionError("a download was started")
    monkeypatch.setattr(download, "download_url", no_download)
    monkeypatch.setattr(cifar, "download_url", no_download)
    tamper(run, lambda meta, arrays: meta["config"].update(data="cifar10"))
    config = json.loads((run / "config.json").read_text())     # the run's own config says so too
    (run / "config.json").write_text(json.dumps(dict(config, data="cifar10")))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found.*a resumed run never downloads"):
        fit(out=str(run), resume=True, progress=False, plot=False, root=str(tmp_path / "empty"))
    assert not (tmp_path / "empty").exists()


def test_a_folder_that_cannot_be_written_is_refused_before_training(run, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(runcheck.tempfile, "mkstemp", read_only)
    with pytest.raises(PermissionError, match="cannot be written .Permission denied.*nothing was trained"):
        fit(out=str(run), resume=True, progress=False, plot=False, callback=no_training)
    with pytest.raises(PermissionError, match="cannot be written"):
        fit("resnet20", "digits", out=str(run.parent / "new"), epochs=1, progress=False, callback=no_training)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: a read-only folder is still writable, so the real case cannot be shown")
def test_a_read_only_folder_for_real(run):
    os.chmod(run, 0o555)
    try:
        with pytest.raises(PermissionError, match="cannot be written"):
            fit(out=str(run), resume=True, progress=False, plot=False, callback=no_training)
    finally:
        os.chmod(run, 0o755)


def test_the_next_run_removes_the_litter_of_killed_writes(run):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    litter = [run / f".last.npz.{dead}.x{i}y.tmp" for i in range(3)] + [run / f".metrics.csv.{dead}.abc.tmp"]
    for path in litter:
        path.write_bytes(b"half a checkpoint")
    foreign = run / ".notes.txt.tmp"                          # not ours: left alone
    foreign.write_bytes(b"")
    fit(out=str(run), resume=True, progress=False, plot=False)
    assert not any(p.exists() for p in litter) and foreign.exists()


def test_cli_resume_and_evaluate_print_every_problem(run, capsys):
    tamper(run, lambda meta, arrays: meta["config"].update(batch_size=0, lr=-1))
    for argv in (["train", "--resume", str(run)], ["evaluate", "--checkpoint", str(run / "last.npz")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "(2 problems)" in err and "batch size must be" in err and "learning rate must be" in err
        assert "Traceback" not in err
