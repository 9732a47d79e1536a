"""Regenerate tests/fixtures/predict/: a real torch.save'd classifier, an image, PyTorch's logits.

Maintainers only; needs PyTorch and Pillow (the tests need neither torch nor this script):

    /work/torchvenv/bin/python tools/make_predict_fixture.py

Writes
    resnet20-cifar.pth   PyTorch's ResNet-20 (tools/torch_reference.py) holding the seeded
                         reference weights of tests/reference.py (seed 0, branch gain 0.1),
                         stored as float16 by torch.save (~0.55 MB: small enough to commit)
    image.png            a 40x48 synthetic RGB picture (gradients, a disc, seeded noise)
    expected.npz         'logits' (1, 10): PyTorch's float32 output in eval mode for the image
                         after torchvision's eval transform with resize=36, crop=32 --
                         implemented here independently of minires, with Pillow and NumPy:
                         shorter side to 36 (bilinear, the longer int(36*long/short)), centre
                         crop 32 (corner int(round((size - 32) / 2))), /255, ImageNet mean/std.
The test loads the .pth with minires (no torch), classifies the image with minires's own
preprocessing, and must reproduce these logits.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import torch_reference as R  # noqa: E402
from reference import reference_state_dict  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures", "predict")
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def make_image():
    rng = np.random.default_rng(7)
    h, w = 40, 48
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w * 255, yy / h * 255, 128 + 100 * np.sin(xx / 5.0)], axis=-1)
    img[(yy - 20) ** 2 + (xx - 30) ** 2 < 80] = [240, 40, 40]
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def torchvision_eval_transform(img, resize, crop):
    w, h = img.size
    if min(w, h) != resize:
        size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
        img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
    x = (x - MEAN[:, None, None].astype(np.float32)) / STD[:, None, None].astype(np.float32)
    return x[None].astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    model = R.resnet20()
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    sd = reference_state_dict(shapes, 0, branch_gain=0.1)
    half = {k: torch.from_numpy(v).half() if v.dtype == np.float64 else torch.from_numpy(v) for k, v in sd.items()}
    torch.save(half, os.path.join(OUT, "resnet20-cifar.pth"))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    model.eval()
    image = make_image()
    image.save(os.path.join(OUT, "image.png"))
    x = torchvision_eval_transform(image, resize=36, crop=32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    np.savez(os.path.join(OUT, "expected.npz"), logits=logits, input=x)
    print("logits", logits, "sizes", {f: os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT)})


if __name__ == "__main__":
    main()
