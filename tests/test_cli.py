"""The `minires` command: gradcheck, --version, every option's help and default, bad numbers refused,
and your own images from training to prediction (issue 27)."""
import argparse
import json
import os

import numpy as np
import pytest

import minires
from minires.cli import HelpFormatter, build_parser, main
from minires.models import resnet20
from minires.teach.gradcheck_cases import gradcheck_cases


def test_gradcheck_command_checks_every_layer(capsys, device):
    titles = [title for title, _ in gradcheck_cases(seed=1, device=device)]
    assert main(["gradcheck", "--seed", "1", "--device", device]) == 0
    out = capsys.readouterr().out
    for layer in ["Conv2d", "BatchNorm2d, train", "BatchNorm2d, eval", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d",
                  "Linear", "Dropout", "CrossEntropyLoss", "Conv2d 3x3, stride 2, padding='same'",
                  "MaxPool2d 3x3, stride 2, padding='same'", "ZeroPad2d", "BasicBlock, identity shortcut",
                  "BasicBlock, stride 2, projection shortcut", "Bottleneck, stride 2, projection shortcut"]:
        assert layer in out
    for title in titles:
        assert f"gradient check: {title}  (float64" in out
    assert f"{len(titles)} of {len(titles)} checks passed" in out and "FAIL" not in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: minires" in capsys.readouterr().out


def test_unknown_option_is_a_one_line_error_with_exit_code_2(capsys):
    assert main(["gradcheck", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tpu'" in err and len(err.strip().splitlines()) == 1


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"minires {minires.__version__}"


def subcommands(parser=None, prefix=()):
    """(argv prefix, parser) for every subcommand, nested ones ('experiment degradation') included."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield prefix + (name,), sub
                yield from subcommands(sub, prefix + (name,))


COMMANDS = list(subcommands())


def test_the_subcommands_are_all_there():
    assert sorted(" ".join(c) for c, _ in COMMANDS) == ["evaluate", "experiment degradation", "explain",
                                                        "gradcheck", "predict", "summary", "train"]


@pytest.mark.parametrize("command, parser", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_every_option_has_help_and_says_its_default(command, parser, capsys):
    formatter = HelpFormatter(parser.prog)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and len(action.help) > 3, f"{' '.join(command)} {name} has no help text"
        flag = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)  # --no-plot ...
        if action.option_strings and not flag and not action.required:
            text = formatter._get_help_string(action)
            assert "default" in text, f"{' '.join(command)} {name}: the help does not say the default: {text!r}"
    assert main([*command, "--help"]) == 0
    assert "usage: minires " + " ".join(command) in capsys.readouterr().out


BAD_NUMBERS = [
    (["train", "--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["train", "--epochs", "ten"], "epochs must be an integer, got 'ten'"),
    (["train", "--batch-size", "-4"], "batch size must be a positive integer, got -4"),
    (["train", "--lr", "0"], "the learning rate must be a positive number, got 0.0"),
    (["train", "--lr", "nan"], "the learning rate must be a positive number, got nan"),
    (["train", "--momentum", "1"], "momentum must be a number in [0, 1), got 1.0"),
    (["train", "--momentum", "-0.1"], "momentum must be a number in [0, 1), got -0.1"),
    (["train", "--weight-decay", "-0.001"], "weight decay must be a finite number >= 0, got -0.001"),
    (["train", "--warmup-epochs", "-1"], "warm-up epochs must be an integer >= 0, got -1"),
    (["train", "--seed", "-1"], "the seed must be an integer >= 0, got -1"),
    (["train", "--image-size", "0"], "the image size must be a positive integer, got 0"),
    (["train", "--val-fraction", "0.6"], "the validation fraction must be a finite number >= 0 and at most 0.5 (a larger "
                                        "one leaves too little to train on; 0: no validation set), got 0.6"),
    (["train", "--val-fraction", "-0.1"], "the validation fraction must be a finite number >= 0, got -0.1"),
    (["train", "--image-size", "513"], "the image size must be a positive integer and at most 512 "
                                       "(minires/data/folder.py:MAX_IMAGE_SIZE), got 513"),
    (["predict", "cat.jpg", "--topk", "-1"], "argument --topk: must be a positive integer, got -1"),
    (["predict", "cat.jpg", "--topk", "0"], "argument --topk: must be a positive integer, got 0"),
    (["predict", "cat.jpg", "--resize", "0"], "argument --resize: must be a positive integer, got 0"),
    (["predict", "cat.jpg", "--crop", "-224"], "argument --crop: must be a positive integer, got -224"),
    (["explain", "cat.jpg", "--target", "-1"], "argument --target: must be an integer >= 0, got -1"),
    (["explain", "cat.jpg", "--target", "two"], "argument --target: must be an integer, got 'two'"),
    (["summary", "--input", "3", "0", "32"], "each of C H W must be a positive integer, got 0"),
    (["summary", "--num-classes", "0"], "argument --num-classes: must be a positive integer, got 0"),
    (["summary", "--depth", "0"], "argument --depth: must be a positive integer, got 0"),
    (["experiment", "degradation", "--depths", "20", "-8"], "each depth must be a positive integer, got -8"),
    (["experiment", "degradation", "--steps", "0"], "argument --steps: must be a positive integer, got 0"),
    (["experiment", "degradation", "--batch-size", "0"], "batch size must be a positive integer, got 0"),
    (["experiment", "degradation", "--lr", "-0.1"], "the learning rate must be a positive number, got -0.1"),
    (["experiment", "degradation", "--momentum", "2"], "momentum must be a number in [0, 1), got 2.0"),
    (["experiment", "degradation", "--weight-decay", "inf"], "weight decay must be a finite number >= 0, got inf"),
    (["experiment", "degradation", "--eval-every", "0"], "argument --eval-every: must be a positive integer, got 0"),
    (["experiment", "degradation", "--seed", "-3"], "the seed must be an integer >= 0, got -3"),
    (["gradcheck", "--seed", "-1"], "the seed must be an integer >= 0, got -1"),
]


@pytest.mark.parametrize("argv, message", BAD_NUMBERS, ids=[" ".join(a) for a, _ in BAD_NUMBERS])
def test_bad_numbers_are_refused_before_anything_runs(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                       # a command that ran anyway would leave runs/ here
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith(f"minires {' '.join(argv[:2] if argv[0] == 'experiment' else argv[:1])}: error:")
    assert captured.out == "" and os.listdir(tmp_path) == []


def test_every_numeric_option_is_checked():
    """Each option that takes a number has one of the checks above (and a case in BAD_NUMBERS)."""
    for command, parser in COMMANDS:
        for action in parser._actions:
            if action.type in (int, float):
                pytest.fail(f"{' '.join(command)} {action.option_strings}: a bare {action.type.__name__}, "
                            "without a range check")
            if action.type is not None and action.option_strings:
                tried = [argv for argv, _ in BAD_NUMBERS if argv[:len(command)] == list(command)
                         and any(o in argv for o in action.option_strings)]
                assert tried, f"no bad value tried for {' '.join(command)} {action.option_strings[0]}"


@pytest.mark.parametrize("model, classes", [("resnet20", 10), ("plain56", 10), ("resnet18", 1000)])
def test_summary_uses_the_models_own_number_of_classes(model, classes, capsys):
    assert main(["summary", "--model", model, "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert f"(1, {classes})" in out
    if model == "resnet20":
        assert f"total parameters: {sum(p.data.size for p in resnet20().parameters()):,}" in out
        assert "total parameters: 269,722" in out       # the paper's 0.27M
        assert "(1, 64, 8, 8)" in out                   # a CIFAR net gets a CIFAR-sized input: 32 -> 8


def test_summary_num_classes_and_input_still_override(capsys):
    assert main(["summary", "--model", "resnet20", "--num-classes", "7", "--input", "1", "16", "16",
                 "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "(1, 7)" in out and "(1, 64, 4, 4)" in out


def test_predict_without_weights_warns_that_they_are_random(capsys):
    pytest.importorskip("PIL", reason="image decoding needs Pillow (pip install Pillow)")
    image = os.path.join(os.path.dirname(__file__), "fixtures", "predict", "image.png")
    assert main(["predict", image, "--model", "resnet20", "--topk", "3", "--resize", "36", "--crop", "32"]) == 0
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and "weights are random" in captured.err
    assert "3. " in captured.out and "4. " not in captured.out


def test_predict_topk_larger_than_the_classes_is_refused(capsys):
    pytest.importorskip("PIL", reason="image decoding needs Pillow (pip install Pillow)")
    image = os.path.join(os.path.dirname(__file__), "fixtures", "predict", "image.png")
    assert main(["predict", image, "--model", "resnet20", "--topk", "11"]) == 2
    err = capsys.readouterr().err
    assert "--topk must be at most the model's number of classes (10), got 11" in err


def test_a_data_notice_is_one_line_on_the_command_line(capsys):
    """A DataNotice (a data set folder that is not the published one) reads like the command
    line's other notes; other warnings keep Python's format."""
    import warnings

    from minires.cli import _notes_on_one_line
    from minires.data import DataNotice
    shown = []
    show = _notes_on_one_line(lambda *a, **k: shown.append(a[0]))
    show(DataNotice("cifar-10-batches-py is not the published CIFAR-10"), DataNotice, "x.py", 1)
    show(UserWarning("something else"), UserWarning, "x.py", 1)
    assert capsys.readouterr().err == "note: cifar-10-batches-py is not the published CIFAR-10\n"
    assert [str(w) for w in shown] == ["something else"]
    with warnings.catch_warnings():
        warnings.showwarning = show
        warnings.warn(DataNotice("again"))
    assert capsys.readouterr().err == "note: again\n"


# ----- your own images: train on a folder, evaluate, predict (issue 27)

def picture_tree(root, classes, per_class=5):
    """root/<class>/<i>.png: small pictures, one colour per class (and a little noise)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            pixels = rng.integers(0, 40, (20, 26, 3)) + np.eye(3, dtype=int)[k % 3] * 200
            Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(root, name, f"{i}.png"))
    return root


def test_train_on_a_folder_then_evaluate_and_predict(tmp_path, monkeypatch, capsys):
    pytest.importorskip("PIL", reason="reading images needs Pillow (pip install Pillow)")
    from minires.data import describe_dataset, load_dataset
    from minires.weights import load_checkpoint, save_checkpoint
    monkeypatch.chdir(tmp_path)
    picture_tree("pets", ["cat", "dog"])
    assert main(["train", "--data", "pets", "--epochs", "1", "--batch-size", "4", "--no-progress", "--no-plot"]) == 0
    run = os.path.join("runs", os.listdir("runs")[0])
    assert os.path.basename(run).startswith("resnet20-pets-")               # named after the folder
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["data"] == str(tmp_path / "pets")                         # found from anywhere
    best = os.path.join(run, "best.npz")
    assert main(["evaluate", "--checkpoint", best]) == 0
    assert f"resnet20 on {tmp_path / 'pets'} (2 test images)" in capsys.readouterr().out
    image = os.path.join("pets", "dog", "3.png")
    assert main(["predict", image, "--checkpoint", best]) == 0
    captured = capsys.readouterr()
    assert "2. " in captured.out and "  cat  (0)" in captured.out and "  dog  (1)" in captured.out
    arrays, meta = load_checkpoint(best)
    assert ("does not record its classes" in captured.err) == ("dataset" not in meta)

    # What `minires train` records (or is to record: the issue 27 report): the training split's description.
    meta["dataset"] = describe_dataset(load_dataset("pets")[0])
    save_checkpoint(best, arrays, meta)
    assert main(["predict", image, "--checkpoint", best]) == 0
    assert capsys.readouterr().err == ""
    picture_tree("zoo", ["ant", "bee"])
    assert main(["evaluate", "--checkpoint", best, "--data", "zoo"]) == 1
    assert "best.npz was trained on the classes cat, dog; zoo has ant, bee" in capsys.readouterr().err


def test_image_size_goes_through_to_the_folder(tmp_path, monkeypatch, capsys):
    pytest.importorskip("PIL", reason="reading images needs Pillow (pip install Pillow)")
    from minires.train.runcheck import DEFAULTS
    if "image_size" not in DEFAULTS:
        pytest.skip("minires/train does not take image_size yet (issue 27: DEFAULTS, config_problems, Run)")
    monkeypatch.chdir(tmp_path)
    picture_tree("pets", ["cat", "dog"])
    assert main(["train", "--data", "pets", "--image-size", "12", "--epochs", "1", "--batch-size", "4",
                 "--out", "run", "--no-progress", "--no-plot"]) == 0
    assert json.load(open(os.path.join("run", "config.json")))["image_size"] == 12
    capsys.readouterr()
    assert main(["predict", os.path.join("pets", "cat", "0.png"), "--checkpoint", os.path.join("run", "best.npz")]) == 0
