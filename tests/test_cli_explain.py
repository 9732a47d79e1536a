"""``minires explain``: a heat map over an image, written as a PNG (minires/cli/explain.py).

Random weights (with predict's warning) on a small picture made here, and a checkpoint of
``minires train`` (one epoch on the bundled digits); the mistakes that are the command line's
(a layer or a class the model does not have) exit 2 with one line naming what is valid.
"""
import os

import numpy as np
import pytest

from minires.cli import main

Image = pytest.importorskip("PIL.Image", reason="reading images needs Pillow (pip install Pillow)")


def picture(path, size=(48, 64)):
    pixels = np.zeros((*size, 3), np.uint8)
    pixels[10:30, 20:40] = (255, 200, 0)
    pixels[30:, :, 2] = 180
    Image.fromarray(pixels).save(path)
    return path


def a_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def test_random_weights_warn_and_write_the_overlay(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    picture("cat.png")
    assert main(["explain", "cat.png", "--model", "resnet18"]) == 0
    out, err = capsys.readouterr()
    assert "WARNING: no --checkpoint or --weights, so resnet18's weights are random" in err
    assert "Grad-CAM (layer4) for " in out and "saved cat-gradcam.png" in out
    assert a_png("cat-gradcam.png")
    assert sorted(os.listdir(".")) == ["cat-gradcam.png", "cat.png"]       # no temporary file left
    assert main(["explain", "cat.png", "--model", "resnet18", "--method", "saliency", "--target", "3",
                 "--out", os.path.join("maps", "sal.png")]) == 0
    assert "saliency for " in capsys.readouterr().out
    assert a_png(os.path.join("maps", "sal.png"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A resnet20 checkpoint after one epoch on the digits, and an 8 x 8 picture of a 1."""
    folder = tmp_path_factory.mktemp("explain")
    run = str(folder / "run")
    assert main(["train", "--epochs", "1", "--batch-size", "256", "--out", run, "--no-progress", "--no-plot"]) == 0
    pixels = np.zeros((8, 8), np.uint8)
    pixels[1:7, 3:5] = 255
    image = str(folder / "one.png")
    Image.fromarray(pixels).save(image)
    return os.path.join(run, "best.npz"), image


def test_a_checkpoint_explains_each_layer_and_class(trained, tmp_path, capsys):
    best, image = trained
    capsys.readouterr()
    out = str(tmp_path / "one.png")
    assert main(["explain", image, "--checkpoint", best, "--out", out]) == 0
    printed, err = capsys.readouterr()
    assert err == "" and "Grad-CAM (layer3) for " in printed and a_png(out)
    before = os.path.getmtime(out)
    assert main(["explain", image, "--checkpoint", best, "--layer", "layer2.0", "--target", "7", "--out", out]) == 0
    assert "Grad-CAM (layer2.0) for 7 (7)" in capsys.readouterr().out
    assert os.path.getmtime(out) >= before and a_png(out)


@pytest.mark.parametrize("options, message", [
    (["--layer", "layer9"], "--layer: CifarResNet has no layer 'layer9'. Did you mean"),
    (["--layer", "fc"], "--layer: layer 'fc' gives shape (1, 10), not a feature map"),
    (["--target", "10"], "--target must be a class index in 0..9 (the model has 10 classes), got 10"),
    (["--model", "resnet56"], "holds a resnet20, not a resnet56"),
])
def test_a_layer_or_class_the_model_lacks_is_one_line(trained, tmp_path, capsys, options, message):
    best, image = trained
    capsys.readouterr()
    out = str(tmp_path / "x.png")
    code = 1 if "--model" in options else 2
    assert main(["explain", image, "--checkpoint", best, "--out", out, *options]) == code
    printed, err = capsys.readouterr()
    assert printed == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("minires explain: error: ") and message in err, err
    assert err.rstrip().endswith("(see: minires explain --help)") == (code == 2)
    if "layer9" in options:
        assert "Its layers: conv1, bn1, relu, layer1" in err
    assert not os.path.exists(out)
