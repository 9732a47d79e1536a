"""Published weights without torch: load a torch.save'd classifier, classify an image like PyTorch."""
import os

import numpy as np
import pytest

pytest.importorskip("PIL", reason="image decoding needs Pillow (pip install Pillow)")

from minires.backend import to_device, to_numpy  # noqa: E402
from minires.cli import main  # noqa: E402
from minires.models import resnet18  # noqa: E402
from minires.nn import no_grad, softmax  # noqa: E402
from minires.predict import classify, default_resize, guess_model, load_pretrained  # noqa: E402
from minires.predict.preprocess import preprocess_imagenet  # noqa: E402
from minires.weights import save_weights  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "predict")
PTH, IMAGE = os.path.join(HERE, "resnet20-cifar.pth"), os.path.join(HERE, "image.png")


def test_a_torch_file_reproduces_pytorchs_logits_for_an_image(device):
    expected = np.load(os.path.join(HERE, "expected.npz"))
    model = load_pretrained(PTH, device=device)        # 'resnet20' guessed from the file name
    assert not model.training and model.fc.out_features == 10
    x = preprocess_imagenet(IMAGE, resize=36, crop=32)
    np.testing.assert_allclose(x, expected["input"], atol=1e-6)   # the same crop, the same numbers
    with no_grad():
        logits = to_numpy(model(to_device(x, device)))
    np.testing.assert_allclose(logits, expected["logits"], rtol=1e-4, atol=1e-5)
    top = classify(model, [IMAGE], topk=3, resize=36, crop=32)[0]
    p = softmax(expected["logits"].astype(np.float64))[0]
    assert [i for i, _, _ in top] == list(np.argsort(-p)[:3])
    assert abs(top[0][2] - p.max()) < 1e-5 and top[0][1] == str(top[0][0])


def test_predict_command_prints_the_top_classes(capsys):
    assert main(["predict", IMAGE, "--weights", PTH, "--topk", "2", "--resize", "36", "--crop", "32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(IMAGE + ":") and "1. " in out and "2. " in out and "3. " not in out


def test_imagenet_model_names_classes_and_v2_resize(tmp_path):
    assert guess_model("resnet50-0676ba61.pth") == "resnet50"
    assert guess_model("/x/resnext101_32x8d-110c445d.pth") == "resnext101_32x8d"
    assert guess_model("wide_resnet50_2-9ba9bcbe.pth") == "wide_resnet50_2"
    assert guess_model("resnet152.safetensors") == "resnet152" and guess_model("weights.pth") is None
    assert default_resize("resnet50-11ad3fa6.pth") == 232 and default_resize("resnet50-0676ba61.pth") == 256
    path = tmp_path / "resnet18-test.safetensors"
    save_weights(str(path), resnet18().state_dict())
    model = load_pretrained(str(path))
    img = tmp_path / "grey.png"
    from PIL import Image
    Image.new("L", (70, 50), 128).save(img)
    top = classify(model, [str(img)], topk=5, resize=64, crop=56)[0]
    assert len(top) == 5 and all(isinstance(name, str) and name for _, name, _ in top)
    from minires.predict.imagenet import imagenet_classes
    assert all(imagenet_classes()[i] == name for i, name, _ in top)


def test_weights_that_do_not_fit_list_the_mismatches(tmp_path, capsys):
    code = main(["predict", IMAGE, "--weights", PTH, "--model", "resnet32"])
    err = capsys.readouterr().err
    assert code != 0 and "do not fit resnet32" in err and "missing keys" in err and "layer1.3.conv1.weight" in err
    code = main(["predict", IMAGE, "--weights", str(tmp_path / "nope.pth")])
    assert code != 0 and "no weights file" in capsys.readouterr().err
    code = main(["predict", str(tmp_path / "nope.png"), "--weights", PTH])
    assert code != 0 and "no image at" in capsys.readouterr().err
    odd = tmp_path / "weights.pth"
    odd.write_bytes(open(PTH, "rb").read())
    code = main(["predict", IMAGE, "--weights", str(odd)])
    assert code != 0 and "cannot tell the model" in capsys.readouterr().err
