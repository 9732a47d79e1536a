"""One rule for exit codes, in every subcommand (issue 27; minires/cli/__init__.py states it).

    0    it worked
    1    it could not be done: a path that is not there, or is a folder where a file belongs (or
         the reverse), a file that is not what it should be, memory that ran out, a failed check
    2    the command line itself is wrong: an unknown option or name, a value out of range, options
         that do not go together
    130  Ctrl-C

Each case is one kind of mistake in one subcommand, and each fails before any work: one line on
stderr, ``minires COMMAND: error: ...`` (with ``(see: minires COMMAND --help)`` for code 2),
nothing on stdout, nothing written. A path's problem reads the same everywhere (minires/files.py):
``no image at X``, ``X: a folder, not a checkpoint; did you mean X/best.npz?``, ``X: a file, not a folder``.
"""
import os
import shutil

import pytest

from minires.cli import build_parser, main

IMAGE = os.path.join(os.path.dirname(__file__), "fixtures", "predict", "image.png")
DEVICE = "/dev/null" if os.path.exists("/dev/null") and not os.path.isfile("/dev/null") else None

USAGE, RUNTIME = 2, 1
CASES = [
    # train (what cmd_train and fit check before a run starts)
    (["train", "--bogus"], USAGE, "unrecognized arguments: --bogus"),
    (["train", "--epochs", "0"], USAGE, "epochs must be a positive integer, got 0"),
    (["train", "--resume"], USAGE, "--resume needs the run folder"),
    (["train", "--resume", "run", "--lr", "0.5"], USAGE, "keeps its saved configuration, except its length "
                                                         "(--epochs); drop --lr"),
    (["train", "--resume", "nowhere"], RUNTIME, "nothing to resume: nowhere/last.npz does not exist"),
    (["train", "--resume", "run/best.npz"], RUNTIME, "run/best.npz: a file, not a run folder (resume takes the "
                                                     "folder that holds last.npz); did you mean --resume run?"),
    (["train", "--data", "cat.png"], RUNTIME, "cat.png: a file, not a folder of class folders"),
    (["train", "--data", "imagenet"], USAGE, "unknown data set 'imagenet'"),
    (["train", "--model", "resnet19"], USAGE, "unknown model 'resnet19'; choose one of: resnet18"),
    (["train", "--data", "mnist", "--data-root", "cat.png", "--no-download", "--out", "new"], RUNTIME,
     "cat.png: a file, not a folder of data sets"),
    # evaluate
    (["evaluate"], USAGE, "the following arguments are required: --checkpoint"),
    (["evaluate", "--checkpoint", "run/best.npz", "--model", "resnet19"], USAGE, "invalid choice: 'resnet19'"),
    (["evaluate", "--checkpoint", "run/best.npz", "--data", "imagenet"], USAGE, "unknown data set 'imagenet'"),
    (["evaluate", "--checkpoint", "nowhere.npz"], RUNTIME, "no checkpoint at nowhere.npz"),
    (["evaluate", "--checkpoint", "run"], RUNTIME, "run: a folder, not a checkpoint; did you mean "
                                                   "run/best.npz or run/last.npz?"),
    (["evaluate", "--checkpoint", "empty"], RUNTIME, "empty: a folder, not a checkpoint"),
    (["evaluate", "--checkpoint", "cat.png"], RUNTIME, "cat.png: not a minires checkpoint"),
    (["evaluate", "--checkpoint", "run/best.npz", "--data", "cat.png"], RUNTIME,
     "cat.png: a file, not a folder of class folders"),
    (["evaluate", "--checkpoint", "run/best.npz", "--data", "./nowhere"], RUNTIME, "no folder at ./nowhere"),
    (["evaluate", "--checkpoint", "run/best.npz", "--out", "cat.png"], RUNTIME, "cat.png: a file, not a folder"),
    (["evaluate", "--checkpoint", "run/best.npz", "--out", "cat.png/out"], RUNTIME,
     "cat.png/out: cannot be a folder, cat.png is a file"),
    # predict
    (["predict"], USAGE, "the following arguments are required: IMAGE"),
    (["predict", "cat.png", "--topk", "0"], USAGE, "argument --topk: must be a positive integer, got 0"),
    (["predict", "cat.png", "--checkpoint", "run/best.npz", "--weights", "w.pth"], USAGE,
     "--checkpoint brings its own model and preprocessing; drop --weights"),
    (["predict", "cat.png", "--model", "resnet20", "--crop", "300"], USAGE,
     "--crop (300) must be at most --resize (256, its default)"),
    (["predict", "cat.png", "--model", "resnet20", "--topk", "11"], USAGE,
     "--topk must be at most the model's number of classes (10), got 11"),
    (["predict", "nowhere.png"], RUNTIME, "no image at nowhere.png"),
    (["predict", "run"], RUNTIME, "run: a folder, not an image; give the images in it (e.g. run/*.jpg)"),
    (["predict", "cat.png/x.png"], RUNTIME, "no image at cat.png/x.png (cat.png is a file, not a folder)"),
    (["predict", "cat.png", "--weights", "nowhere.pth"], RUNTIME, "no weights file at nowhere.pth"),
    (["predict", "cat.png", "--weights", "empty"], RUNTIME, "empty: a folder, not a weights file"),
    (["predict", "cat.png", "--checkpoint", "nowhere.npz"], RUNTIME, "no checkpoint at nowhere.npz"),
    (["predict", "cat.png", "--checkpoint", "run"], RUNTIME, "run: a folder, not a checkpoint; did you mean "
                                                             "run/best.npz or run/last.npz?"),
    # explain
    (["explain"], USAGE, "the following arguments are required: IMAGE"),
    (["explain", "cat.png", "--checkpoint", "run/best.npz", "--weights", "w.pth"], USAGE,
     "--checkpoint brings its own model and preprocessing; drop --weights"),
    (["explain", "cat.png", "--method", "saliency", "--layer", "layer3"], USAGE, "drop --layer"),
    (["explain", "cat.png", "--method", "lime"], USAGE, "invalid choice: 'lime'"),
    (["explain", "cat.png", "--target", "-1"], USAGE, "argument --target: must be an integer >= 0, got -1"),
    (["explain", "cat.png", "--out", "cat.jpg"], USAGE, "--out must name a .png file, got 'cat.jpg'"),
    (["explain", "nowhere.png"], RUNTIME, "no image at nowhere.png"),
    (["explain", "run"], RUNTIME, "run: a folder, not an image"),
    (["explain", "cat.png", "--out", "cat.png/x.png"], RUNTIME, "cat.png: a file, not a folder"),
    (["explain", "cat.png", "--checkpoint", "nowhere.npz"], RUNTIME, "no checkpoint at nowhere.npz"),
    # summary
    (["summary", "--model", "resnet19"], USAGE, "invalid choice: 'resnet19'"),
    (["summary", "--input", "3", "0", "32"], USAGE, "each of C H W must be a positive integer, got 0"),
    (["summary", "--model", "resnet20", "--input", "3", "1000000", "1000000"], RUNTIME, "Unable to allocate"),
    # experiment degradation
    (["experiment", "degradation", "--depths", "20"], USAGE, "give at least two depths to compare, got [20]"),
    (["experiment", "degradation", "--depths", "20", "21"], USAGE, "each depth must be 6n+2 with n >= 1"),
    (["experiment", "degradation", "--data", "imagenet"], USAGE, "invalid choice: 'imagenet'"),
    (["experiment", "degradation", "--out", "cat.png"], RUNTIME, "cat.png: a file, not a folder"),
    (["experiment", "degradation", "--data", "mnist", "--data-root", "cat.png", "--out", "new"], RUNTIME,
     "cat.png: a file, not a folder of data sets"),
    (["experiment", "degradation", "--data", "cifar10", "--data-root", "empty", "--no-download", "--out", "new"],
     RUNTIME, "CIFAR-10 not found"),
    # gradcheck (its exit code 1, a failed check, and Ctrl-C: test_a_failed_gradient_check_exits_1 below)
    (["gradcheck", "--device", "tpu"], USAGE, "argument --device: invalid choice: 'tpu'"),
    (["gradcheck", "--seed", "-1"], USAGE, "the seed must be an integer >= 0, got -1"),
]
if DEVICE:
    CASES += [(["evaluate", "--checkpoint", DEVICE], RUNTIME, f"{DEVICE}: a device, not a checkpoint"),
              (["predict", DEVICE], RUNTIME, f"{DEVICE}: a device, not an image")]


def command_of(argv):
    """'experiment degradation' or the subcommand, as the error line names it."""
    return " ".join(argv[:2]) if argv[0] == "experiment" else argv[0]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder holding cat.png, a run folder with best.npz and last.npz (empty files: only their
    names matter here) and an empty folder."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(IMAGE, "cat.png")
    os.mkdir("run")
    for name in ("best.npz", "last.npz"):
        open(os.path.join("run", name), "wb").close()
    os.mkdir("empty")
    return tmp_path


def listing(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files + [""])


@pytest.mark.parametrize("argv, code, message", CASES, ids=[" ".join(a) for a, _, _ in CASES])
def test_each_mistake_has_its_exit_code_and_one_line(place, capsys, argv, code, message):
    before = listing(place)
    assert main(argv) == code
    out, err = capsys.readouterr()
    command = command_of(argv)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"minires {command}: error: "), err
    assert message in err, err
    assert err.rstrip().endswith(f"(see: minires {command} --help)") == (code == USAGE), err
    assert "Traceback" not in err and "[Errno" not in err, err
    assert out == ""
    assert listing(place) == before                  # refused before anything was written


def test_every_subcommand_has_cases_of_both_codes():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = {name for name in sub.choices if name != "experiment"}
    commands |= {f"experiment {name}" for name in next(a for a in sub.choices["experiment"]._actions
                                                        if a.dest == "experiment").choices}
    seen = {(command_of(argv), code) for argv, code, _ in CASES}
    wanted = {(c, code) for c in commands for code in (USAGE, RUNTIME)} - {("gradcheck", RUNTIME)}  # below
    missing = sorted(wanted - seen)
    assert not missing, missing


def test_a_failed_gradient_check_exits_1_and_ctrl_c_130(monkeypatch, capsys):
    import minires.teach.gradcheck_cases as cases

    class Failed:
        ok = False

        def __str__(self):
            return "conv: relative error 1.0 FAILED"

    monkeypatch.setattr(cases, "run_gradchecks", lambda seed, device: iter([Failed()]))
    assert main(["gradcheck"]) == 1
    out, err = capsys.readouterr()
    assert "0 of 1 checks passed, 1 FAILED" in out and err == ""

    def interrupted(seed, device):
        raise KeyboardInterrupt
        yield
    monkeypatch.setattr(cases, "run_gradchecks", interrupted)
    assert main(["gradcheck"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
