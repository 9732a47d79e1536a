"""Hostile image inputs (issue 26): sizes over the maximum, decompression bombs, images whose
resize would explode, truncated and corrupt files. Each is refused before it costs memory,
with one error naming the file (the library) or one line on stderr and exit 1 (the command
line), and Pillow's global settings are left as they were.

Every image is made here, small: a 20000 x 20000 PNG of one colour is 50 KB.
"""
import io
import os
import struct
import warnings
import zlib

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="image decoding needs Pillow (pip install Pillow)")

from minires.cli import main  # noqa: E402
from minires.predict import classify, load_pretrained  # noqa: E402
from minires.predict.preprocess import MAX_IMAGE_SIZE, load_image, preprocess_imagenet  # noqa: E402
from minires.predict.preprocess_keras import preprocess_keras  # noqa: E402

PTH = os.path.join(os.path.dirname(__file__), "fixtures", "predict", "resnet20-cifar.pth")


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def black_png(width, height):
    """A 1-bit grey PNG, all black, compressed row by row (never held whole): 20000 x 20000 is 50 KB."""
    z = zlib.compressobj(6)
    row = b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def noise(width=64, height=48, fmt="JPEG"):
    """A random RGB picture, encoded (a JPEG of noise does not compress away)."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def broken_png():
    """A PNG whose image data is split in two chunks, the second with a garbled type: Pillow
    raises SyntaxError ("broken PNG file") while decoding, which is no OSError."""
    data = noise(fmt="PNG")
    start, (length,) = 33, struct.unpack(">I", data[33:37])         # the IDAT after the 8 + 25 bytes
    idat, end = data[start + 8:start + 8 + length], start + 12 + length
    return data[:start] + chunk(b"IDAT", idat[:100]) + chunk(b"\xf1\x0b\xdaL", idat[100:]) + data[end:]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path} of the hostile files (and one good JPEG), made once (the bomb takes 0.7 s)."""
    folder = tmp_path_factory.mktemp("hostile-images")
    jpeg = noise()
    made = {"good.jpg": jpeg, "bomb.png": black_png(20000, 20000), "warn.png": black_png(10000, 10000),
            "thin.png": black_png(1, 50000), "truncated.jpg": jpeg[:len(jpeg) // 2],
            "truncated.png": noise(fmt="PNG")[:300], "broken.png": broken_png(), "text.png": b"not an image\n"}
    paths = {}
    for name, data in made.items():
        paths[name] = str(folder / name)
        with open(paths[name], "wb") as f:
            f.write(data)
    assert all(os.path.getsize(p) < 100_000 for p in paths.values())
    return paths


@pytest.fixture(autouse=True)
def pillow_untouched():
    """Every test leaves Pillow's limit and the warning filters as it found them."""
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    yield
    assert Image.MAX_IMAGE_PIXELS == limit and warnings.filters == filters


def test_sizes_over_the_maximum_are_refused_before_the_image_is_opened(tmp_path):
    nowhere = str(tmp_path / "nowhere.jpg")          # never opened: the sizes are checked first
    model = load_pretrained(PTH)
    too_big = (rf"^resize must be at most {MAX_IMAGE_SIZE} pixels "
               r"\(MAX_IMAGE_SIZE, minires/predict/preprocess.py\), got 40000$")
    for call in (lambda: preprocess_imagenet(nowhere, resize=40000, crop=224),
                 lambda: classify(model, [nowhere], resize=40000, crop=224)):
        with pytest.raises(ValueError, match=too_big):
            call()
    for call in (lambda: preprocess_imagenet(nowhere, resize=256, crop=30000),
                 lambda: classify(model, [nowhere], resize=256, crop=30000),
                 lambda: preprocess_keras(nowhere, "caffe", size=30000)):
        with pytest.raises(ValueError, match=f"must be at most {MAX_IMAGE_SIZE} pixels .*got 30000$"):
            call()
    with pytest.raises(ValueError, match=r"^crop \(300\) must not exceed resize \(256\)"):
        preprocess_imagenet(nowhere, resize=256, crop=300)
    with pytest.raises(ValueError, match=r"^crop \(300\) must not exceed resize \(256\)"):
        classify(model, [nowhere], resize=256, crop=300)
    with pytest.raises(ValueError, match="positive"):
        preprocess_imagenet(nowhere, resize=0)
    for bad in (256.0, True, "256", None):
        with pytest.raises(TypeError, match="resize must be an int"):
            preprocess_imagenet(nowhere, resize=bad)


def test_the_largest_sizes_still_work():
    img = Image.new("RGB", (30, 20), (200, 100, 0))
    assert preprocess_imagenet(img, resize=MAX_IMAGE_SIZE, crop=MAX_IMAGE_SIZE).shape == (1, 3, 2048, 2048)
    assert preprocess_imagenet(img, resize=np.int64(40), crop=np.int64(40)).shape == (1, 3, 40, 40)
    assert preprocess_keras(img, "tf", size=MAX_IMAGE_SIZE).shape == (1, 3, 2048, 2048)


class KerasStub:
    """Just enough of a Keras-flavoured model for classify: Keras's preprocessing, 3 classes."""
    preprocessing, data_format = "tf", "channels_first"

    def parameters(self):
        return []

    def __call__(self, x):
        assert x.shape == (1, 3, 300, 300)
        return np.array([[0.0, 1.0, 2.0]], np.float32)


def test_keras_preprocessing_has_no_resize_so_its_crop_may_exceed_it():
    img = Image.new("RGB", (30, 20))
    assert [i for i, _, _ in classify(KerasStub(), [img], topk=3, resize=256, crop=300)[0]] == [2, 1, 0]
    with pytest.raises(ValueError, match="resize must be at most"):
        classify(KerasStub(), [img], resize=40000, crop=300)


def test_an_image_over_pillows_pixel_limit_is_refused_undecoded(files, monkeypatch):
    resource = pytest.importorskip("resource")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, pixels in (("bomb.png", "400,000,000"), ("warn.png", "100,000,000")):   # Pillow: error, warning
        for call in (lambda: preprocess_imagenet(files[name]), lambda: preprocess_keras(files[name], "caffe"),
                     lambda: load_image(files[name])):
            with pytest.raises(ValueError) as caught:
                call()
            assert str(caught.value) == (f"{files[name]} has {pixels} pixels, over Pillow's limit of 89,478,485 "
                                         "(PIL.Image.MAX_IMAGE_PIXELS): refused undecoded, as a possible "
                                         "decompression bomb")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000   # KiB: nothing was decoded
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)                    # the limit in force is the one used
    with pytest.raises(ValueError, match=r"has 3,072 pixels, over Pillow's limit of 1,000 "):
        preprocess_imagenet(files["good.jpg"])


def test_an_image_whose_resize_would_exceed_the_limit_is_refused(files):
    with pytest.raises(ValueError) as caught:
        preprocess_imagenet(files["thin.png"], resize=256, crop=224)
    assert str(caught.value) == (f"resizing {files['thin.png']} (1 x 50000) to a shorter side of 256 would make it "
                                 "256 x 12800000, 3,276,800,000 pixels, over Pillow's limit of 89,478,485 "
                                 "(PIL.Image.MAX_IMAGE_PIXELS): its sides are too unequal")
    assert preprocess_keras(files["thin.png"], "tf", size=32).shape == (1, 3, 32, 32)   # Keras squeezes it


@pytest.mark.parametrize("name, reason", [
    ("truncated.jpg", ": "), ("truncated.png", ": "), ("broken.png", ": broken PNG file"),
    ("text.png", ": Pillow does not recognise its format")])
def test_a_truncated_or_corrupt_file_is_an_oserror_naming_it(files, name, reason):
    for call in (lambda: preprocess_imagenet(files[name]), lambda: preprocess_keras(files[name], "tf")):
        with pytest.raises(OSError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"cannot read the image {files[name]}{reason}") and "\n" not in message


def test_a_lazily_opened_pillow_image_is_named_too(files, tmp_path):
    with Image.open(files["truncated.jpg"]) as img:                  # opened: only the header is read
        with pytest.raises(OSError, match=f"^cannot read the image {files['truncated.jpg']}: "):
            preprocess_imagenet(img)
    with pytest.raises(FileNotFoundError, match=f"^no image at {tmp_path / 'gone.png'}$"):
        preprocess_imagenet(str(tmp_path / "gone.png"))
    with pytest.raises(ValueError, match=r"^the image is empty \(0 x 5 pixels\)$"):
        preprocess_imagenet(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("options, message", [
    (["--crop", "30000"], f"argument --crop: must be a positive integer and at most {MAX_IMAGE_SIZE}"),
    (["--resize", "40000"], f"argument --resize: must be a positive integer and at most {MAX_IMAGE_SIZE}"),
    (["--crop", "0"], "argument --crop: must be a positive integer"),
    (["--crop", "300"], "--crop (300) must be at most --resize (256, its default)"),        # options that clash
    (["--crop", "40", "--resize", "36"], "--crop (40) must be at most --resize (36)"),
])
def test_sizes_out_of_range_are_usage_errors(files, capsys, options, message):
    """Usage errors (exit 2): out of range (refused by the parser), or a crop larger than the resize
    (refused before any image is read)."""
    code = main(["predict", files["good.jpg"], "--weights", PTH, *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("image, options, message", [
    ("bomb.png", [], "bomb.png has 400,000,000 pixels, over Pillow's limit"),
    ("warn.png", [], "warn.png has 100,000,000 pixels, over Pillow's limit"),
    ("thin.png", [], "thin.png (1 x 50000) to a shorter side of 256 would make it"),
    ("truncated.jpg", [], "cannot read the image {}: "),
    ("truncated.png", [], "cannot read the image {}: "),
    ("broken.png", [], "cannot read the image {}: broken PNG file"),
    ("text.png", [], "cannot read the image {}: Pillow does not recognise its format"),
])
def test_the_command_line_prints_one_line_and_exits_1(files, capsys, image, options, message):
    code = main(["predict", files[image], "--weights", PTH, *options])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("minires predict: error: ") and len(err.strip().splitlines()) == 1, err
    assert message.format(files[image]) in err and "Traceback" not in err


def test_good_images_still_classify(files, capsys):
    assert main(["predict", files["good.jpg"], "--weights", PTH, "--resize", "36", "--crop", "32"]) == 0
    assert capsys.readouterr().out.startswith(files["good.jpg"] + ":")
