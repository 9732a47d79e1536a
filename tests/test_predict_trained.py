"""Use what you trained (issue 27): a checkpoint of `minires train` classifies your own images,
prepared as its training images were, and names the classes. The checkpoints are made here,
with random weights; the images are small coloured pictures."""
import os
import warnings

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="reading images needs Pillow (pip install Pillow)")

from minires.backend import to_device, to_numpy  # noqa: E402
from minires.cli import main  # noqa: E402
from minires.data import DataNotice, describe_dataset, load_dataset, square_image  # noqa: E402
from minires.nn import manual_seed, no_grad, softmax  # noqa: E402
from minires.predict import classify_trained, load_pretrained, load_trained  # noqa: E402
from minires.predict.trained import prepare_trained  # noqa: E402
from minires.train.runcheck import DEFAULTS, FORMAT  # noqa: E402
from minires.weights import save_checkpoint, save_weights  # noqa: E402
from minires.zoo import get_model  # noqa: E402

CLASSES = ("cat", "dog", "eel")


@pytest.fixture
def pets(tmp_path):
    """tmp/pets/<class>/<i>.png, three classes of four pictures: (folder, its train split at 16 x 16)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        os.makedirs(tmp_path / "pets" / name)
        for i in range(4):
            pixels = rng.integers(0, 256, (18, 24, 3), dtype=np.uint8) // 2 + 40 * k
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "pets" / name / f"{i}.png")
    folder = str(tmp_path / "pets")
    return folder, load_dataset(folder, image_size=16)[0]


def write_checkpoint(path, data, description=None, classes=3, channels=3, **config):
    """A checkpoint as `minires train` writes one (weights under model/, the config, the format), with
    ``description`` as its 'dataset' entry when given; random weights."""
    manual_seed(0)
    net = get_model("resnet20", num_classes=classes, in_channels=channels)
    arrays = {"model/" + k: to_numpy(v) for k, v in net.state_dict().items()}
    meta = {"config": dict(DEFAULTS, model="resnet20", data=data, **config), "format": FORMAT}
    if description is not None:
        meta["dataset"] = description
    save_checkpoint(str(path), arrays, meta)
    return str(path)


def test_an_image_is_prepared_and_classified_as_in_training(pets, tmp_path, device):
    folder, train = pets
    path = write_checkpoint(tmp_path / "best.npz", folder, describe_dataset(train))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # the checkpoint says it all: no notice
        model, info = load_trained(path, device=device)
    assert info["classes"] == CLASSES and info["image_shape"] == (3, 16, 16) and info["name"] == "resnet20"
    assert not model.training
    image = os.path.join(folder, "dog", "2.png")
    x = prepare_trained(image, info)
    expected = (square_image(image, 16) / np.float32(255) - train.mean[:, None, None]) / train.std[:, None, None]
    np.testing.assert_allclose(x[0], expected, rtol=1e-6, atol=1e-6)
    with no_grad():
        p = to_numpy(softmax(model(to_device(x, device))))[0]
    top = classify_trained(model, info, [image, Image.open(image)], topk=2)
    assert [t[0][0] for t in top] == [int(np.argmax(p))] * 2 and len(top[0]) == 2
    assert top[0][0][1] == CLASSES[top[0][0][0]] and top[0][0][2] == pytest.approx(float(p.max()), rel=1e-5)


def test_a_grey_model_sees_a_grey_image(tmp_path, pets):
    folder, _ = pets
    description = {"name": "digits", "classes": [str(d) for d in range(10)], "image_shape": [1, 8, 8],
                   "mean": [0.3], "std": [0.4]}
    path = write_checkpoint(tmp_path / "digits.npz", "digits", description, classes=10, channels=1)
    model, info = load_trained(path)
    top = classify_trained(model, info, [os.path.join(folder, "cat", "0.png")], topk=10)[0]
    assert sorted(name for _, name, _ in top) == [str(d) for d in range(10)]
    assert sum(p for _, _, p in top) == pytest.approx(1.0)


def test_an_older_checkpoint_takes_classes_and_statistics_from_its_data_set(pets, tmp_path):
    folder, train = pets
    path = write_checkpoint(tmp_path / "old.npz", folder, image_size=16)
    with pytest.warns(DataNotice, match="old.npz does not record its classes and image statistics; taking them "
                                        "from its data set"):
        _, info = load_trained(path)
    assert info["classes"] == CLASSES and info["image_shape"] == (3, 16, 16)
    np.testing.assert_array_equal(info["mean"], train.mean)
    gone = write_checkpoint(tmp_path / "gone.npz", str(tmp_path / "moved-away"))
    with pytest.warns(DataNotice), pytest.raises(ValueError, match=r"gone.npz does not record its classes and image "
                                                                   r"statistics, and its data set .* cannot be read "
                                                                   r"to find them: no folder at"):
        load_trained(gone)


def test_an_older_digits_checkpoint_gets_the_digits_classes(tmp_path):
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn")
    path = write_checkpoint(tmp_path / "digits.npz", "digits", classes=10, channels=1)
    with pytest.warns(DataNotice):
        _, info = load_trained(path)
    assert info["classes"] == tuple("0123456789") and info["image_shape"] == (1, 8, 8)


def test_files_that_are_not_such_a_checkpoint(pets, tmp_path):
    folder, train = pets
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_trained(str(tmp_path / "nope.npz"))
    state = tmp_path / "resnet20.npz"
    save_weights(str(state), get_model("resnet20").state_dict())
    with pytest.raises(ValueError, match="resnet20.npz is not a checkpoint written by `minires train`.*--weights"):
        load_trained(str(state))
    damaged = write_checkpoint(tmp_path / "damaged.npz", folder, dict(describe_dataset(train), std=[0, 1, 1]))
    with pytest.raises(ValueError, match="damaged.npz: its data set description is damaged: std must be a list of 3"):
        load_trained(damaged)
    four = write_checkpoint(tmp_path / "four.npz", folder, dict(describe_dataset(train), classes=list("abcd")))
    with pytest.raises(ValueError, match="the weights in .*four.npz do not fit a resnet20 for 4 classes and 3 input "
                                         "channels: .*fc.weight"):
        load_trained(four)
    trained = write_checkpoint(tmp_path / "best.npz", folder, describe_dataset(train))
    with pytest.raises(ValueError, match="best.npz is a checkpoint written by `minires train`, not a state_dict: .* "
                                         "give it with --checkpoint"):
        load_pretrained(trained, "resnet20")


def test_predict_command_with_a_checkpoint(pets, tmp_path, capsys):
    folder, train = pets
    path = write_checkpoint(tmp_path / "best.npz", folder, describe_dataset(train))
    image = os.path.join(folder, "eel", "1.png")
    assert main(["predict", image, "--checkpoint", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(image + ":\n  1. ") and "3. " in out and "4. " not in out     # all 3 classes, not 5
    assert all(f"  {name}  (" in out for name in CLASSES)
    assert main(["predict", image, "--checkpoint", path, "--topk", "1"]) == 0
    assert "2. " not in capsys.readouterr().out
    for argv, code, message in [
            (["--topk", "4"], 2, "--topk must be at most the model's number of classes (3), got 4"),
            (["--resize", "36", "--crop", "32"], 2, "--checkpoint brings its own model and preprocessing; drop "
                                                    "--resize, --crop (see: minires predict --help)"),
            (["--model", "resnet32"], 1, f"{path} holds a resnet20, not a resnet32")]:
        assert main(["predict", image, "--checkpoint", path, *argv]) == code
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
