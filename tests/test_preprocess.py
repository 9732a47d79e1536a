"""minires.predict.preprocess: torchvision's ImageNet eval transform on Pillow images."""
import numpy as np
import pytest

from minires.predict.preprocess import (IMAGENET_MEAN, IMAGENET_STD, center_crop, center_crop_box,
                                        preprocess_imagenet, resized_size, to_normalized_array)

Image = pytest.importorskip("PIL.Image")


def gradient_image(width, height):
    """An RGB image: red = column // 2, green = row // 2 (both < 256 up to 511 pixels), blue = 7."""
    x = np.zeros((height, width, 3), np.uint8)
    x[..., 0] = np.arange(width)[None, :] // 2
    x[..., 1] = np.arange(height)[:, None] // 2
    x[..., 2] = 7
    return Image.fromarray(x)


@pytest.mark.parametrize("w, h, size, want", [
    (500, 375, 256, (341, 256)),       # int(256 * 500 / 375) = int(341.33)
    (375, 500, 256, (256, 341)),
    (640, 480, 232, (309, 232)),       # int(232 * 640 / 480) = int(309.33): the V2 weights' size
    (300, 300, 256, (256, 256)),
    (257, 1000, 256, (256, 996)),      # int(996.108...): truncated, not rounded
])
def test_resized_size_matches_torchvision(w, h, size, want):
    assert resized_size(w, h, size) == want


@pytest.mark.parametrize("w, h, box", [
    (341, 256, (58, 16, 282, 240)),    # round(58.5) = 58 (halves go to even), round(16) = 16
    (256, 256, (16, 16, 240, 240)),
    (227, 225, (2, 0, 226, 224)),      # round(1.5) = 2, round(0.5) = 0
    (224, 224, (0, 0, 224, 224)),
])
def test_center_crop_box_uses_pythons_round(w, h, box):
    assert center_crop_box(w, h, 224) == box


def test_preprocess_shape_dtype_and_crop_position():
    img = gradient_image(500, 375)
    x = preprocess_imagenet(img)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    # Undo the normalisation: the blue channel was constant 7 everywhere.
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    pixels = (x[0] * std[:, None, None] + mean[:, None, None]) * 255
    assert np.allclose(pixels[2], 7, atol=1e-3)
    # 500x375 -> 341x256, then the crop starts at column 58, row 16 of the resized image.
    # Resized pixel j samples the source around (j + 0.5) * scale - 0.5; red = column // 2.
    def source(j, scale):
        return ((j + 0.5) * scale - 0.5) / 2
    red, green = pixels[0], pixels[1]
    for col in (0, 100, 223):
        assert abs(red[100, col] - source(58 + col, 500 / 341)) < 1
    for row in (0, 223):
        assert abs(green[row, 100] - source(16 + row, 375 / 256)) < 1


def test_shorter_side_already_right_is_not_resampled():
    img = gradient_image(300, 256)
    x = preprocess_imagenet(img)
    want = to_normalized_array(img.crop((38, 16, 262, 240)))   # round(38.0), round(16.0)
    assert np.array_equal(x[0], want)


def test_small_image_is_padded_like_torchvision():
    img = gradient_image(220, 200)
    x = to_normalized_array(center_crop(img, 224))               # crop larger than the image
    assert x.shape == (3, 224, 224)
    black = to_normalized_array(Image.new("RGB", (1, 1)))[:, 0, 0]
    assert np.allclose(x[:, 0, 0], black)                       # padding is zero (black)
    assert np.allclose(x[:, 12, 2], to_normalized_array(img.crop((0, 0, 1, 1)))[:, 0, 0])
    with pytest.raises(ValueError, match=r"crop \(224\) must not exceed resize \(200\)"):
        preprocess_imagenet(img, resize=200, crop=224)           # preprocess_imagenet never pads


def test_grey_image_and_path_input(tmp_path):
    grey = Image.fromarray(np.full((260, 300), 128, np.uint8), mode="L")
    x = preprocess_imagenet(grey)
    assert x.shape == (1, 3, 224, 224)
    assert np.allclose(x[0, :, 5, 5], (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), atol=1e-6)
    grey.save(tmp_path / "g.png")
    assert np.array_equal(preprocess_imagenet(tmp_path / "g.png"), x)


def test_normalisation_is_float32_arithmetic():
    img = gradient_image(3, 2)
    got = to_normalized_array(img)
    x = np.asarray(img).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    want = (x - np.float32(0.485)) / np.float32(0.229)
    assert np.array_equal(got[0], want[0])


def test_bad_input():
    with pytest.raises(TypeError, match="Pillow image"):
        preprocess_imagenet(np.zeros((224, 224, 3)))
    with pytest.raises(ValueError, match="positive"):
        resized_size(10, 10, 0)
