"""The files the seed tutorial's own TensorFlow code writes load, and give TensorFlow's numbers.

tools/make_tutorial_files.py ran the tutorial's code as written (tools/seed_tf_resnet.py) under
TensorFlow 2.21 with tf-keras (Keras 2) and, with the least edits Keras 3 needs
(tools/seed_tf_resnet_keras3.py: no '/' in layer names, padding="same" in the max-pool), under
Keras 3; set every variable (batch norms random), and saved the weights the three ways its
readers would: model.save_weights("x.h5") and ("x.ckpt") under Keras 2, ("x.weights.h5") under
Keras 3. Its blocks drop name=, so none of these files carries the tutorial's layer names:
minires pairs their layers with its own in the order Keras tracks them (as the tutorial's code assigns them)
(minires/keras/structure.py). The files are committed xz-compressed with TensorFlow's
probabilities and moving statistics; here they are loaded through the public loader and
`minires predict`, in float32, and compared to 1e-4 relative.
"""
import lzma
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("h5py", reason="the Keras weights reader needs h5py (pip install 'minires[keras]')")

from minires.keras.models import KERAS_MODELS  # noqa: E402
from minires.nn import BatchNorm2d  # noqa: E402
from minires.predict import load_pretrained  # noqa: E402
from minires.weights import WeightsError  # noqa: E402
from minires.keras.weights import keras_file_info, load_keras_weights  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "keras", "tutorial")
DEPTHS = ["resnet34", "resnet50", "resnet101"]
CKPT = "keras2.ckpt.data-00000-of-00001"


@pytest.fixture(scope="module", params=DEPTHS)
def tutorial(request, tmp_path_factory):
    """(depth, folder with the decompressed files, expected) for one depth."""
    depth = request.param
    src, out = os.path.join(HERE, depth), tmp_path_factory.mktemp(depth)
    for name in ("keras2.h5", "keras2.ckpt.index", CKPT, "keras3.weights.h5"):
        with lzma.open(os.path.join(src, name + ".xz")) as f, open(out / name, "wb") as g:
            shutil.copyfileobj(f, g, 1 << 20)
    shutil.copy(os.path.join(src, "checkpoint"), out / "checkpoint")
    with np.load(os.path.join(src, "expected.npz"), allow_pickle=False) as f:
        expected = {k: f[k] for k in f.files}
    return depth, out, expected


def model_for(depth, expected, **kw):
    return KERAS_MODELS[f"tf_{depth}"](num_classes=int(expected["num_classes"]), data_format="channels_last", **kw)


# the file as each reader would give it: what they passed to save_weights, and the other spellings
FORMS = {"keras2.h5": ("keras2.h5", "probs_keras2"), "keras2.ckpt": ("keras2.ckpt", "probs_keras2"),
         "keras2.ckpt.index": ("keras2.ckpt.index", "probs_keras2"), "folder": ("", "probs_keras2"),
         "keras3.weights.h5": ("keras3.weights.h5", "probs_keras3")}


@pytest.mark.parametrize("form", list(FORMS))
def test_the_tutorials_files_give_tensorflows_probabilities(tutorial, form):
    depth, folder, expected = tutorial
    name, probs = FORMS[form]
    model = load_keras_weights(model_for(depth, expected), os.path.join(folder, name) if name else str(folder)).eval()
    out = model(expected["input"])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected[probs], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("form", ["keras2.h5", "keras2.ckpt", "keras3.weights.h5"])
def test_the_moving_statistics_are_tensorflows(tutorial, form):
    """Every batch norm's moving mean and variance and epsilon, by the tutorial's name for it."""
    depth, folder, expected = tutorial
    model = load_keras_weights(model_for(depth, expected), os.path.join(folder, form))
    bns = {m.keras_name: m for _, m in model.keras_layers() if isinstance(m, BatchNorm2d)}
    assert sorted(bns) == sorted(expected["bn_paths"])
    ends = np.cumsum(expected["bn_sizes"])
    for path, end, size, eps in zip(expected["bn_paths"], ends, expected["bn_sizes"], expected["epsilon"]):
        np.testing.assert_array_equal(bns[path].running_mean, expected["moving_mean"][end - size:end], err_msg=path)
        np.testing.assert_array_equal(bns[path].running_var, expected["moving_variance"][end - size:end], err_msg=path)
        assert bns[path].eps == eps, path


def test_predict_recognises_the_tutorials_network_from_each_file(tutorial):
    depth, folder, expected = tutorial
    for name in ("keras2.h5", "keras2.ckpt", "keras3.weights.h5", ""):
        path = os.path.join(folder, name) if name else str(folder)
        assert keras_file_info(path) == (f"tf_{depth}", 10, "tracking order"), path
        model = load_pretrained(path)
        assert type(model).__name__ == "TFResNet" and model.fc.weight.shape[0] == 10
        assert "paired with" in model.weights_note and f"tf_{depth}" in model.weights_note
        logits = model(expected["input"].transpose(0, 3, 1, 2))   # NCHW, logits out (no softmax) for predict
        p = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(p / p.sum(1, keepdims=True), expected["probs_keras2"], rtol=1e-4, atol=1e-6)


def test_a_file_of_another_depth_is_refused_saying_what_differs(tutorial):
    depth, folder, expected = tutorial
    other = {"resnet34": "resnet50", "resnet50": "resnet101", "resnet101": "resnet34"}[depth]
    model = model_for(other, expected)
    before = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    for name in ("keras2.h5", "keras2.ckpt", "keras3.weights.h5"):
        with pytest.raises(WeightsError, match=rf"matched by the order Keras tracks the tutorial's layers, "
                                               rf"and that structure differs: the file holds .* this TFResNet has "
                                               rf".*\(the file looks like tf_{depth}'s\)"):
            load_keras_weights(model, os.path.join(folder, name))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_another_number_of_classes_is_refused_naming_the_layer(tutorial):
    depth, folder, expected = tutorial
    model = KERAS_MODELS[f"tf_{depth}"](num_classes=7)
    with pytest.raises(WeightsError, match=r"layer 'layer_with_weights-6' \(the model's logits\) kernel has shape \(\d+, 10\) .* needs \(\d+, 7\)"):
        load_keras_weights(model, os.path.join(folder, "keras2.ckpt"))


def test_the_command_line_classifies_with_a_tensorflow_checkpoint(tutorial, tmp_path, capsys):
    depth, folder, expected = tutorial
    if depth != "resnet34":
        pytest.skip("one depth is enough for the command line (the loader is tested at every depth)")
    Image = pytest.importorskip("PIL.Image", reason="needs Pillow")
    from minires.cli import main
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(tmp_path / "x.png"), "--weights", str(folder / "keras2.ckpt"),
                 "--topk", "3", "--crop", "64"]) == 0
    out, err = capsys.readouterr()
    assert out.count("%") == 3 and "note:" in err and "tf_resnet34" in err
