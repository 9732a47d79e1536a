"""minires.teach.experiments: the degradation experiment runs end to end, writes its files, and says clearly what is wrong."""
import csv
import json

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn (pip install scikit-learn)")

from minires import nn  # noqa: E402
from minires.cli import main  # noqa: E402
from minires.data import ArrayDataset, load_dataset  # noqa: E402
from minires.teach.experiments import (CSV_COLUMNS, degradation, format_summary, smooth, train_steps,  # noqa: E402
                                 verdict)
from minires.models import CifarResNet  # noqa: E402


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_runs_a_tiny_configuration_and_writes_its_files(tmp_path, capsys):
    out = tmp_path / "deg"
    code, text, err = run_cli(capsys, "experiment", "degradation", "--depths", "8", "14", "--steps", "3",
                              "--batch-size", "16", "--out", str(out))
    assert code == 0, err
    for name in ("plain8", "plain14", "resnet8", "resnet14"):
        assert name in text
    assert "plain: plain14 ends with a training error of" in text and "residual: resnet14" in text
    assert str(out / "degradation.png") in text

    with open(out / "degradation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 4 * 3
    plain8 = [r for r in rows if r["model"] == "plain8"]
    assert [int(r["step"]) for r in plain8] == [1, 2, 3]
    assert [r["train_error_eval"] != "" for r in plain8] == [False, False, True]  # measured after the last step
    assert all(0 <= float(r["batch_error"]) <= 1 and float(r["loss"]) > 0 for r in rows)

    saved = json.loads((out / "degradation.json").read_text())
    assert saved["config"]["depths"] == [8, 14] and saved["config"]["steps"] == 3
    assert [r["model"] for r in saved["runs"]] == ["plain8", "plain14", "resnet8", "resnet14"]
    for r in saved["runs"]:
        assert 0 <= r["train_error"] <= 1 and 0 <= r["train_error_eval"] <= 1 and 0 <= r["test_error"] <= 1
        assert r["train_loss"] > 0 and r["seconds"] > 0
        assert [e[0] for e in r["evals"]] == [3]
    assert set(saved["verdict"]) == {"plain", "resnet"} and saved["summary"] in text
    assert (out / "degradation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("argv, message, exit_code", [
    (["--depths", "20"], "at least two depths", 2),        # depths that cannot be compared: usage errors
    (["--depths", "20", "21"], "each depth must be 6n+2 with n >= 1", 2),
    (["--depths", "2", "8"], "each depth must be 6n+2 with n >= 1", 2),
    (["--depths", "20", "20"], "the depths must differ", 2),
    (["--batch-size", "5000"], "batch size 5000 is larger than the training set (1437 images)", 1),
    # numbers out of range are usage errors, refused while parsing (exit code 2)
    (["--steps", "0"], "argument --steps: must be a positive integer, got 0", 2),
    (["--batch-size", "-1"], "batch size must be a positive integer, got -1", 2),
    (["--lr", "0"], "the learning rate must be a positive number, got 0.0", 2),
    (["--momentum", "-0.5"], "momentum must be a number in [0, 1), got -0.5", 2),
    (["--eval-every", "0"], "argument --eval-every: must be a positive integer, got 0", 2),
])
def test_bad_options_are_one_line_errors_and_write_nothing(argv, message, exit_code, tmp_path, capsys):
    out = tmp_path / "deg"
    code, _, err = run_cli(capsys, "experiment", "degradation", "--depths", "8", "14", "--steps", "2",
                           "--out", str(out), *argv)
    assert code == exit_code
    assert message in err and len(err.strip().splitlines()) == 1 and err.startswith("minires experiment")
    assert ": error: " in err
    assert not out.exists() or not list(out.iterdir())


def test_missing_data_and_unknown_names_are_clear(tmp_path, capsys):
    code, _, err = run_cli(capsys, "experiment", "degradation", "--data", "cifar10", "--no-download",
                           "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "deg"))
    assert code == 1 and "cifar" in err.lower() and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "deg").exists()
    with pytest.raises(ValueError, match="unknown data set 'imagenet'"):
        degradation(data="imagenet", log=None)
    with pytest.raises(ValueError, match="schedule must be 'constant', 'step' or 'cosine', got 'linear'"):
        degradation(schedule="linear", log=None)
    assert main(["experiment"]) == 2           # the experiment's name is required
    assert "EXPERIMENT" in capsys.readouterr().err


def small_digits(n=48):
    train, test = load_dataset("digits")
    return (ArrayDataset(train.images[:n], train.labels[:n], train.classes, train.mean, train.std),
            ArrayDataset(test.images[:n], test.labels[:n], test.classes, test.mean, test.std))


def test_train_steps_counts_exact_steps_across_epochs_and_repeats_exactly(device):
    train, test = small_digits()               # 48 images, batch 16: 3 steps per epoch

    def record(seed):
        nn.manual_seed(0)
        model = CifarResNet(1, 10, residual=False, in_channels=1)
        return train_steps(model.to(device), train, test, steps=7, batch_size=16, lr=0.05, eval_every=3,
                           seed=seed, device=device)

    a, b, c = record(0), record(0), record(1)
    assert len(a["loss"]) == len(a["batch_error"]) == len(a["lr"]) == 7
    assert [e[0] for e in a["evals"]] == [3, 6, 7]
    assert a == b                              # same seed, same batches: the same numbers
    assert a["loss"] != c["loss"]              # another seed, another order of batches


def test_the_step_schedule_drops_the_learning_rate():
    train, test = small_digits()
    nn.manual_seed(0)
    rec = train_steps(CifarResNet(1, 10, in_channels=1), train, test, steps=8, batch_size=16, lr=0.1,
                      schedule="step")
    assert rec["lr"][0] == 0.1 and rec["lr"][-1] == pytest.approx(0.001)   # /10 at 50% and at 75%


def test_smooth_is_a_running_mean():
    v = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    expected = [np.mean(v[max(0, i - 2):i + 1]) for i in range(len(v))]   # the last 3 values
    np.testing.assert_allclose(smooth(v, 3), expected)
    np.testing.assert_allclose(smooth(v, 1), v)


def fake_run(kind, depth, train_error):
    return dict(model=f"{kind}{depth}", kind=kind, depth=depth, residual=kind == "resnet", parameters=1000,
                train_error=train_error, train_loss=0.1, train_error_eval=0.2, test_error=0.5, seconds=1.0)


def test_verdict_compares_the_deepest_with_the_shallowest():
    runs = [fake_run("plain", 56, 0.30), fake_run("plain", 20, 0.05), fake_run("plain", 32, 0.10),
            fake_run("resnet", 20, 0.04), fake_run("resnet", 56, 0.01), fake_run("resnet", 32, 0.02)]
    v = verdict(runs)
    assert v["plain"]["deeper_is_worse"] and v["plain"]["shallow"] == "plain20" and v["plain"]["deep"] == "plain56"
    assert not v["resnet"]["deeper_is_worse"] and v["resnet"]["deep_train_error"] == 0.01
    cfg = dict(data="digits", steps=1, batch_size=1, lr=0.1, schedule="constant", momentum=0.9, weight_decay=0.0,
               train_images=1437, train_error_images=1437)
    text = format_summary({"config": cfg, "runs": runs, "verdict": v})
    assert "plain56 ends with a training error of 30.00%, HIGHER than plain20's 5.00% -> degradation" in text
    assert "resnet56 ends with a training error of 1.00%, lower than resnet20's 4.00% -> no degradation" in text
    close = verdict([fake_run("plain", 8, 0.0), fake_run("plain", 20, 0.005), fake_run("resnet", 8, 0.02),
                     fake_run("resnet", 20, 0.0)])
    assert close["plain"]["comparison"] == "about the same" and not close["plain"]["deeper_is_worse"]
    assert close["resnet"]["comparison"] == "lower"


def test_a_large_training_set_is_measured_on_a_fixed_sample(monkeypatch):
    import minires.teach.experiments as experiments
    monkeypatch.setattr(experiments, "TRAIN_EVAL_MAX", 100)
    result = degradation(depths=(8, 14), steps=2, batch_size=16, log=None)
    assert result["config"]["train_images"] == 1437 and result["config"]["train_error_images"] == 100
    assert "a fixed sample of 100 of the 1,437 training images" in result["summary"]
    for r in result["runs"]:
        wrong = r["train_error_eval"] * 100              # a whole number of the 100 images
        assert abs(wrong - round(wrong)) < 1e-9
