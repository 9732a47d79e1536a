"""Training for real: a bounded run learns the digits, resume is exact, Ctrl-C is safe, bad input is clear."""
import json
import os
import signal

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn (pip install scikit-learn)")

from backends import DEVICE_BACKENDS  # noqa: E402
from minires.cli import main  # noqa: E402
from minires.train import fit  # noqa: E402
from minires.train.run import COLUMNS  # noqa: E402
from minires.weights import load_checkpoint  # noqa: E402


def test_a_small_resnet_learns_the_digits(tmp_path, capsys):
    history = fit("resnet20", "digits", out=str(tmp_path), epochs=5, progress=False)
    summary = capsys.readouterr().out.split("finished: ")[1].splitlines()   # the run ends with a summary
    best = max(history, key=lambda r: r["val_acc"])
    test = history.test
    assert summary[0].startswith("resnet20 on digits, 5 of 5 epochs")
    assert summary[1] == f"  best validation accuracy  {best['val_acc']:.2%} at epoch {best['epoch']} (best.npz)"
    assert summary[2] == f"  final validation accuracy {history[-1]['val_acc']:.2%} at epoch 5 (last.npz)"
    assert summary[3] == (f"  test accuracy {test['test_acc']:.2%} (loss {test['test_loss']:.4f}) at epoch "
                          f"{best['epoch']} (best.npz), measured once, at the end")
    assert summary[4].startswith(f"  run folder {tmp_path}: best.npz (")
    for name in ("config.json", "metrics.csv", "curves.png", "last.npz"):
        assert f"{name} (" in summary[4]
    assert len(history) == 5 and test["epoch"] == best["epoch"] and test["checkpoint"] == "best.npz"
    assert test["test_acc"] >= 0.90, test
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for name in ("config.json", "metrics.csv", "curves.png", "last.npz", "best.npz"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == ",".join(COLUMNS) and len(rows) == 6
    tested = [r for r in _metrics(tmp_path) if r["test_acc"] == r["test_acc"]]     # the others are empty (NaN)
    assert [int(r["epoch"]) for r in tested] == [best["epoch"]] and tested[0]["test_acc"] == test["test_acc"]
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 5
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_the_validation_set_is_held_out_of_training_stratified_and_seeded():
    from minires.train.run import Run, make_config
    run = Run(make_config(val_fraction=0.1, seed=3))
    whole = len(run.train_set) + len(run.val_set)
    assert len(run.val_set) == int(np.ceil(whole * 0.1)) and run.val_set.split == "validation"
    shares = run.val_set.class_counts() / run.train_set.class_counts()
    assert np.all(np.abs(shares - 1 / 9) < 0.02), shares                  # each class keeps its share
    seen = {img.tobytes() for img in run.train_set.images}
    assert not any(img.tobytes() in seen for img in run.val_set.images)   # no image on both sides
    again = Run(make_config(val_fraction=0.1, seed=3))
    assert np.array_equal(again.val_set.labels, run.val_set.labels) and np.array_equal(again.val_set.images,
                                                                                        run.val_set.images)
    other = Run(make_config(val_fraction=0.1, seed=4))
    assert not np.array_equal(other.val_set.images, run.val_set.images)  # the run's seed chooses it


def test_without_a_validation_set_the_last_epoch_is_kept_and_tested(tmp_path, capsys):
    history = fit("resnet20", "digits", out=str(tmp_path), epochs=2, batch_size=256, val_fraction=0, progress=False,
                  plot=False)
    summary = capsys.readouterr().out.split("finished: ")[1].splitlines()
    assert "val_acc" not in history[0] and history.test["epoch"] == 2 and history.test["checkpoint"] == "last.npz"
    assert summary[1] == "  no validation set (val_fraction 0): the last epoch is the one kept (last.npz)"
    assert not (tmp_path / "best.npz").exists()


def interrupt_at(step_to_stop):
    """A callback that presses Ctrl-C (sends SIGINT to this process) after the given step."""
    def callback(step, loss):
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)
    return callback


def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    options = dict(epochs=2, batch_size=128, progress=False, plot=False)
    full = fit("resnet20", "digits", out=str(tmp_path / "full"), **options)

    part = tmp_path / "part"
    stopped = fit("resnet20", "digits", out=str(part), callback=interrupt_at(15), **options)  # epoch 2, batch 5 of 10
    assert len(stopped) == 1                                   # epoch 1 finished, epoch 2 interrupted
    out = capsys.readouterr().out
    assert "finishing this batch" in out
    assert "stopped: resnet20 on digits, 1 of 2 epochs" in out and "at epoch 1 (best.npz)" in out
    assert f"test accuracy: measured once the run has finished (minires train --resume {part})" in out
    assert stopped.test is None
    arrays, meta = load_checkpoint(part / "last.npz")          # the interrupt left a loadable checkpoint ...
    assert meta["position"]["epoch"] == 1 and meta["position"]["batch"] == 5
    assert not [p for p in os.listdir(part) if p.endswith(".tmp")]   # ... and no partial file

    resumed = fit(out=str(part), resume=True, progress=False, plot=False)
    assert len(resumed) == 2 and resumed.test == full.test
    for a, b in zip(full, resumed):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert a[key] == b[key], (key, a, b)
    final_full, _ = load_checkpoint(tmp_path / "full" / "last.npz")
    final_resumed, _ = load_checkpoint(part / "last.npz")
    for key in final_full:
        np.testing.assert_array_equal(final_full[key], final_resumed[key], err_msg=key)


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet19"], "unknown model 'resnet19'; choose one of: resnet18"),
    (["--data", "imagenet"], "unknown data set 'imagenet'; valid names are: digits, cifar10, mnist, fashion-mnist"),
    (["--lr", "0"], "the learning rate must be a positive number, got 0.0"),
    (["--batch-size", "-4"], "batch size must be a positive integer, got -4"),
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
])
def test_bad_options_are_one_line_errors_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--out", str(out), "--no-progress", *argv)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_and_corrupt_data_are_clear_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", "cifar10", "--data-root", str(tmp_path / "nowhere"),
                           "--no-download", "--out", str(tmp_path / "run"))
    assert code != 0 and "cifar" in err.lower() and len(err.strip().splitlines()) == 1
    root = tmp_path / "data"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(b"this is not a tar archive")
    code, _, err = run_cli(capsys, "train", "--data", "cifar10", "--data-root", str(root), "--no-download",
                           "--out", str(tmp_path / "run"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and ("md5" in err.lower() or "checksum" in err.lower())
    assert not (tmp_path / "run").exists()


def test_checkpoint_of_another_architecture_and_resume_rules(tmp_path, capsys):
    run = tmp_path / "run"
    fit("resnet20", "digits", out=str(run), epochs=1, batch_size=256, progress=False, plot=False)
    before = {p: (run / p).read_bytes() for p in os.listdir(run)}

    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", str(run / "last.npz"))
    assert code == 0 and "accuracy" in out and "<- predicted" in out and (run / "confusion.png").exists()

    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(run / "last.npz"), "--model", "resnet32")
    assert code != 0 and "holds a resnet20, not a resnet32" in err
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--lr", "0.5")
    assert code == 2 and "keeps its saved configuration, except its length (--epochs); drop --lr" in err
    code, _, err = run_cli(capsys, "train", "--out", str(run))
    assert code != 0 and "already holds a run" in err
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(tmp_path / "missing.npz"))
    assert code != 0 and "no checkpoint at" in err
    for p, data in before.items():  # nothing that was written is damaged
        assert (run / p).read_bytes() == data, p


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    run = tmp_path / "run"
    first = fit("resnet20", "digits", out=str(run), epochs=1, batch_size=256, progress=False, plot=False)
    again = fit(out=str(run), resume=True, progress=False, plot=False)
    assert again == first


def test_run_summary_names_the_best_epoch_not_the_last():
    from minires.train import run_summary
    cfg = dict(model="resnet20", data="digits", epochs=4, val_fraction=0.1)
    history = [dict(epoch=e, val_acc=a, seconds=1.5) for e, a in [(1, 0.9), (2, 0.99), (3, 0.99), (4, 0.98)]]
    test = dict(epoch=2, checkpoint=None, test_loss=0.05, test_acc=0.975)
    lines = run_summary(cfg, history, None, 7.25, test=test).splitlines()
    assert lines == ["finished: resnet20 on digits, 4 of 4 epochs, 6.0 s of training steps, 7.2 s in this call",
                     "  best validation accuracy  99.00% at epoch 2",     # the first of equals: what best.npz holds
                     "  final validation accuracy 98.00% at epoch 4",
                     "  test accuracy 97.50% (loss 0.0500) at epoch 2, measured once, at the end"]
    assert run_summary(cfg, [], None, 0.5, stopped=True).splitlines()[1] == "  no epoch finished yet"


@pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
def test_train_resume_and_evaluate_on_the_device(tmp_path, capsys, device):
    """`minires train --device cuda` for a few steps (ResNet-20, digits, one epoch of 5 steps),
    in-process: on [strict] the CuPy stand-in plays the GPU. A run interrupted after step 3 and
    resumed from its device checkpoint equals the uninterrupted one; a device checkpoint evaluates
    through `minires evaluate`. (The CPU alone: test_interrupt_then_resume_equals_an_uninterrupted_run;
    device and CPU giving the same numbers: test_parity.py's [strict] and [cupy] columns.)"""
    options = dict(epochs=1, batch_size=256, progress=False, plot=False)
    full_dir, part_dir = tmp_path / "full", tmp_path / "part"
    code, out, _ = run_cli(capsys, "train", "--model", "resnet20", "--data", "digits", "--epochs", "1",
                           "--batch-size", "256", "--device", device, "--out", str(full_dir),
                           "--no-progress", "--no-plot")
    assert code == 0 and "1/1" in out, out
    full = _metrics(full_dir)

    stopped = fit("resnet20", "digits", out=str(part_dir), device=device, callback=interrupt_at(3), **options)
    assert stopped == [] and "finishing this batch" in capsys.readouterr().out
    assert load_checkpoint(part_dir / "last.npz")[1]["config"]["device"] == "cuda"
    code, _, _ = run_cli(capsys, "train", "--resume", str(part_dir), "--no-progress", "--no-plot")
    assert code == 0
    resumed = _metrics(part_dir)
    assert len(resumed) == len(full) == 1
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
        assert full[0][key] == pytest.approx(resumed[0][key], rel=1e-5), (key, full, resumed)

    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", str(full_dir / "last.npz"), "--device", device)
    assert code == 0 and f"accuracy {full[0]['test_acc']:.2%}" in out, out


def _metrics(run_dir):
    """metrics.csv as a list of dicts of floats."""
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    names = rows[0].split(",")
    return [{k: float(v or "nan") for k, v in zip(names, r.split(","))} for r in rows[1:]]


def test_the_progress_bar_is_off_when_the_output_is_not_a_terminal(tmp_path):
    """A tqdm bar redrawn into a log file is hundreds of lines of noise: fit's bar turns itself off."""
    pytest.importorskip("tqdm", reason="the progress bar is tqdm's (pip install tqdm)")
    import subprocess
    import sys
    code = ("from minires.train import fit; fit('resnet20', 'digits', epochs=1, batch_size=256, plot=False, "
            "val_fraction=0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "it/s" not in proc.stderr and "epoch 1/1:" not in proc.stderr, proc.stderr    # stderr is a pipe here
    assert "epoch   1/1" in proc.stdout
