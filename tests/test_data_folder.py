"""Your own images (issue 27): a folder of class folders read as a data set, the torchvision /
Keras way. Every tree is made here, small: a few coloured images per class."""
import os
import warnings
import zlib

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="reading images needs Pillow (pip install Pillow)")

from minires.data import (DataError, DataNotice, as_trained, channel_mean_std, data_problem,  # noqa: E402
                          describe_dataset, description_problems, load_dataset, square_image)
from minires.data import folder as folder_module  # noqa: E402
from minires.data.transforms import CropFlip  # noqa: E402

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "eel": (30, 30, 200)}


def picture(path, colour, size=(24, 18), mode="RGB", fmt=None):
    """A picture of one colour, a little noise on it, saved in the format its name says."""
    rng = np.random.default_rng(zlib.crc32(os.fsencode(path)))
    pixels = np.clip(np.asarray(colour) + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path, fmt)


def tree(root, per_class=5, classes=COLOURS, split=None):
    """root/<class>/<i>.png|.jpg (or root/<split>/<class>/...), ``per_class`` images each; returns root."""
    for name in classes:
        for i in range(per_class):
            where = os.path.join(root, *([split] if split else []), name)
            picture(os.path.join(where, f"{i}.{'jpg' if i % 2 else 'png'}"), COLOURS.get(name, (90, 90, 90)))
    return str(root)


def quiet_load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no notice expected: a notice is a failure here
        return load_dataset(*args, **kwargs)


# ----- the two layouts

def test_a_folder_of_class_folders_is_split_80_20_stratified_and_seeded(tmp_path):
    root = tree(tmp_path / "pets", per_class=10)
    train, test = quiet_load(root, image_size=16)
    assert train.classes == test.classes == ("cat", "dog", "eel")         # folder names, sorted
    assert train.images.dtype == np.uint8 and train.image_shape == (3, 16, 16)
    assert list(train.class_counts()) == [8, 8, 8] and list(test.class_counts()) == [2, 2, 2]
    assert train.name == "pets" and (train.split, test.split) == ("train", "test")
    mean, std = channel_mean_std(train.images)                              # statistics of the training split
    np.testing.assert_array_equal(train.mean, mean)
    np.testing.assert_array_equal(test.std, std)
    assert isinstance(train.augment, CropFlip) and train.augment.padding == 2 and test.augment is None
    again, _ = quiet_load(root, image_size=16)                              # the same on every call
    np.testing.assert_array_equal(again.images, train.images)
    np.testing.assert_array_equal(again.labels, train.labels)


def test_train_and_test_folders_are_used_as_given(tmp_path):
    tree(tmp_path / "pets", per_class=3, split="train")
    tree(tmp_path / "pets", per_class=2, split="test")
    train, test = quiet_load(str(tmp_path / "pets"))
    assert train.image_shape == (3, 32, 32)                                 # the default size
    assert list(train.class_counts()) == [3, 3, 3] and list(test.class_counts()) == [2, 2, 2]
    expected = square_image(str(tmp_path / "pets" / "test" / "dog" / "1.jpg"), 32)
    np.testing.assert_array_equal(test.images[3], expected)               # test/dog/0.png, then 1.jpg
    np.testing.assert_array_equal(test.mean, train.mean)                    # the training split's


def test_val_is_a_test_split_too(tmp_path):
    tree(tmp_path / "pets", per_class=2, split="train")
    tree(tmp_path / "pets", per_class=1, split="val")
    train, test = quiet_load(tmp_path / "pets", image_size=8)              # a pathlib.Path works too
    assert len(train) == 6 and len(test) == 3


def test_what_counts_as_an_image(tmp_path):
    root = tree(tmp_path / "pets", per_class=2, classes=["cat", "dog"])
    picture(str(tmp_path / "pets" / "cat" / "deeper" / "x.PNG"), COLOURS["cat"])       # below, upper case: in
    picture(str(tmp_path / "pets" / "cat" / "y.bmp"), COLOURS["cat"], mode="L")        # grey: made RGB
    picture(str(tmp_path / "pets" / "cat" / "z.gif"), COLOURS["cat"], mode="P")        # a palette: made RGB
    picture(str(tmp_path / "pets" / "cat" / ".hidden.png"), COLOURS["cat"])            # a dot name: out
    picture(str(tmp_path / "pets" / ".thumbnails" / "t.png"), COLOURS["cat"])          # a dot folder: no class
    (tmp_path / "pets" / "dog" / "README.txt").write_text("dogs")                       # not an image: ignored
    train, test = quiet_load(root, image_size=8)
    assert train.classes == ("cat", "dog")
    assert list(train.class_counts() + test.class_counts()) == [5, 2]
    grey = square_image(str(tmp_path / "pets" / "cat" / "y.bmp"), 8)
    assert grey.shape == (3, 8, 8) and (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()


def test_shorter_side_resized_then_the_centre_square_cut(tmp_path):
    """A 60 x 20 picture of three 20 x 20 squares, red, green and blue: at size 20 nothing is
    resized and the centre square is the green one; at 10 the same, halved."""
    pixels = np.zeros((20, 60, 3), np.uint8)
    for k in range(3):
        pixels[:, 20 * k:20 * (k + 1), k] = 255
    path = str(tmp_path / "flag.png")
    Image.fromarray(pixels).save(path)
    x = square_image(path, 20)
    assert x.shape == (3, 20, 20) and (x[1] == 255).all() and (x[0] == 0).all() and (x[2] == 0).all()
    small = square_image(path, 10)
    assert small.shape == (3, 10, 10) and (small[1, :, 2:8] == 255).all() and (small[0, :, 2:8] == 0).all()
    assert square_image(Image.open(path), 10, channels=1).shape == (1, 10, 10)   # a Pillow image, grey


# ----- what is refused, in one line naming the folder

def test_folders_that_are_not_a_data_set(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"^no folder at {tmp_path}/nope$"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="is a file, not a folder of class folders"):
        load_dataset(str(tmp_path / "file.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty holds no class folders: put each class's images in a folder"):
        load_dataset(str(tmp_path / "empty"))
    one = tree(tmp_path / "one", classes=["cat"])
    with pytest.raises(DataError, match="one holds one class folder, 'cat': a classifier needs at least two"):
        load_dataset(one)
    hollow = tree(tmp_path / "hollow", classes=["cat", "dog"])
    (tmp_path / "hollow" / "eel").mkdir()
    (tmp_path / "hollow" / "eel" / "notes.txt").write_text("no pictures")
    with pytest.raises(DataError, match=r"hollow/eel holds no images \(files ending in .jpg, .jpeg, .png"):
        load_dataset(hollow)


def test_split_folders_must_match(tmp_path):
    tree(tmp_path / "a", per_class=2, split="train")
    with pytest.raises(DataError, match="a has a train/ folder but no test/: give both"):
        load_dataset(str(tmp_path / "a"))
    tree(tmp_path / "a", per_class=1, classes=["cat", "dog", "fox"], split="test")
    with pytest.raises(DataError, match="must hold the same class folders; only in test/: fox; only in train/: eel"):
        load_dataset(str(tmp_path / "a"))


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    root = tree(tmp_path / "pets", per_class=4)
    (tmp_path / "pets" / "cat" / "broken.jpg").write_bytes(b"not a picture")
    good = (tmp_path / "pets" / "dog" / "0.png").read_bytes()
    (tmp_path / "pets" / "dog" / "cut.png").write_bytes(good[:len(good) // 2])
    with pytest.warns(DataNotice) as notes:
        train, test = load_dataset(root, image_size=8)
    assert len(notes) == 1
    message = str(notes[0].message)
    assert message.startswith(f"skipped 2 of 14 files in {root} that could not be read as images; the first: "
                              f"cannot read the image {root}/cat/broken.jpg")
    assert len(train) + len(test) == 12


def test_a_class_left_without_images_is_an_error(tmp_path):
    root = tree(tmp_path / "pets", per_class=2, classes=["cat", "dog"])
    for name in os.listdir(tmp_path / "pets" / "dog"):
        (tmp_path / "pets" / "dog" / name).write_bytes(b"junk")
    with pytest.warns(DataNotice), pytest.raises(DataError, match=r"dog holds 0 readable images \(2 unreadable files "
                                                                  r"skipped\); each class needs at least 2"):
        load_dataset(root)
    lonely = tree(tmp_path / "lonely", per_class=1, classes=["cat", "dog"])
    with pytest.raises(DataError, match="cat holds 1 readable image; each class needs at least 2 to be split"):
        load_dataset(lonely)


def test_a_decompression_bomb_is_skipped_undecoded(tmp_path, monkeypatch):
    root = tree(tmp_path / "pets", per_class=2, classes=["cat", "dog"])
    picture(str(tmp_path / "pets" / "cat" / "big.png"), COLOURS["cat"], size=(100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)       # 100 x 100 is more than twice that
    with pytest.warns(DataNotice, match=r"big.png has 10,000 pixels, over Pillow's limit of 2,000 .* refused "
                                        "undecoded, as a possible decompression bomb"):
        train, test = load_dataset(root, image_size=8)
    assert len(train) + len(test) == 4


def test_sizes_and_counts_are_bounded_before_any_image_is_read(tmp_path, monkeypatch):
    root = tree(tmp_path / "pets", per_class=3, classes=["cat", "dog"])
    for bad in (0, folder_module.MAX_IMAGE_SIZE + 1, True, 3.5, "32"):
        with pytest.raises(ValueError, match=r"image_size must be an integer from 1 to 512 \(MAX_IMAGE_SIZE, "
                                             r"minires/data/folder.py\), got"):
            load_dataset(root, image_size=bad)

    def never(*args, **kwargs):
        raise AssertionError("an image was read")
    monkeypatch.setattr(folder_module, "square_image", never)
    monkeypatch.setattr(folder_module, "MAX_IMAGES", 4)
    with pytest.raises(DataError, match=r"more than 4 image files in the data set \(MAX_IMAGES"):
        load_dataset(root)
    monkeypatch.setattr(folder_module, "MAX_IMAGES", 100)
    monkeypatch.setattr(folder_module, "MAX_BYTES", 6 * 3 * 32 * 32 - 1)
    with pytest.raises(DataError, match=r"6 images of 3 x 32 x 32 would take 0.0 GiB of memory, over MAX_BYTES"):
        load_dataset(root)


# ----- names and folders, for load_dataset and a training configuration

def test_names_win_and_everything_else_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_problem("digits") is None and data_problem("/anywhere/pets") is None and data_problem("a/b") is None
    assert data_problem("pets").startswith("unknown data set 'pets'; valid names are: digits, cifar10, mnist, "
                                           "fashion-mnist, or the path of a folder of class folders (no folder 'pets' in")
    assert "unknown data set None" in data_problem(None) and "unknown data set 3" in data_problem(3)
    tree(tmp_path / "pets", per_class=2, classes=["cat", "dog"])
    assert data_problem("pets") is None                        # an existing folder, named without a separator
    assert len(quiet_load("pets", image_size=4)[0]) == 3           # of 4: one to test
    with pytest.raises(ValueError, match="image_size is for a folder of your own images; digits comes at its "
                                         "published size"):
        load_dataset("digits", image_size=32)
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; valid names are"):
        load_dataset("imagenet")


def test_a_description_records_what_predict_needs(tmp_path):
    train, test = quiet_load(tree(tmp_path / "pets", per_class=3), image_size=8)
    d = describe_dataset(train)
    assert d == {"name": "pets", "classes": ["cat", "dog", "eel"], "image_shape": [3, 8, 8],
                 "mean": [float(m) for m in train.mean], "std": [float(s) for s in train.std]}
    assert description_problems(d) == []
    bad = dict(d, classes=["cat", "cat"], mean=[0.5], std=[0.1, 0.0, 0.2])
    assert description_problems(bad) == [
        "classes must be a list of 2 to 100,000 different names, got ['cat', 'cat']",
        "mean must be a list of 3 finite numbers >= 0, got [0.5]",
        "std must be a list of 3 finite numbers > 0, got [0.1, 0.0, 0.2]"]
    assert "image_shape must be [C, H, W]" in description_problems(dict(d, image_shape=[2, 8, 8]))[0]
    assert description_problems([]) == ["the data set description must be a dict, got list"]
    trained = as_trained(test, dict(d, mean=[0.1, 0.2, 0.3]), "best.npz")
    assert trained.mean.tolist() == pytest.approx([0.1, 0.2, 0.3]) and trained.images is test.images
    with pytest.raises(ValueError, match="best.npz was trained on the classes ant, bee, cat; pets has cat, dog, eel"):
        as_trained(test, dict(d, classes=["ant", "bee", "cat"]), "best.npz")
