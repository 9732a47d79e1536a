"""Keras weight files without TensorFlow: Keras-written files (committed, tiny), layouts, bad files."""
import json
import os
import shutil

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="the Keras weights reader needs h5py (pip install 'minires[keras]')")

from keras_reference import KERAS_FIXTURES, keras_reference_input  # noqa: E402
from minires.keras.models import KerasResNet  # noqa: E402
from minires.predict import classify, load_pretrained  # noqa: E402
from minires.predict.preprocess_keras import keras_preprocess_input, preprocess_keras  # noqa: E402
from minires.weights import WeightsError  # noqa: E402
from minires.keras.weights import guess_keras_model, keras_file_info, load_keras_weights  # noqa: E402
from reference import FIXTURE_DIR, fixture_path, load_fixture  # noqa: E402

FILES = os.path.join(FIXTURE_DIR, "keras", "files")


def tiny_fixture(name):
    with np.load(os.path.join(FILES, name + ".npz"), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def tiny_model(name, **kw):
    spec = json.loads(str(tiny_fixture(name)["spec"]))
    return KerasResNet(spec["version"], spec["layers"], spec["widths"], num_classes=5,
                       data_format="channels_last", **kw)


@pytest.mark.parametrize("name", ["tiny_v1", "tiny_v2"])
@pytest.mark.parametrize("layout", [".weights.h5", "_legacy.h5"])
def test_keras_written_files_load_and_match_keras(name, layout):
    fx = tiny_fixture(name)
    model = load_keras_weights(tiny_model(name), os.path.join(FILES, name + layout)).eval()
    x = keras_reference_input(tuple(fx["input_shape"]), int(fx["seed_input"])).astype(np.float32)
    np.testing.assert_allclose(model(x), fx["out_eval"], rtol=1e-5, atol=1e-6)
    assert model.layer1[0].bn1.num_batches_tracked == 0


def test_legacy_tf2_names_and_whole_model_files(tmp_path):
    """TF-Keras 2 wrote weight names with ':0' and model.save() nests them under 'model_weights'."""
    src = os.path.join(FILES, "tiny_v1_legacy.h5")
    renamed, whole = tmp_path / "tf2.h5", tmp_path / "whole.h5"
    shutil.copy(src, renamed)
    with h5py.File(renamed, "r+") as f:
        for name in [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]:
            g = f[name]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
            for n in names:
                g.move(n, n + ":0")
            if names:
                g.attrs["weight_names"] = [(n + ":0").encode() for n in names]
    with h5py.File(src, "r") as f, h5py.File(whole, "w") as out:
        f.copy(f["/"], out, "model_weights")
        for k, v in f.attrs.items():
            out["model_weights"].attrs[k] = v
    x = keras_reference_input((1, 40, 36, 3), 5).astype(np.float32)
    reference = load_keras_weights(tiny_model("tiny_v1"), src).eval()(x)
    for path in (renamed, whole):
        np.testing.assert_array_equal(load_keras_weights(tiny_model("tiny_v1"), path).eval()(x), reference)


def test_slash_names_as_tf_keras_2_wrote_the_seeds_layers(tmp_path):
    """The seed's TF-Keras 2 names ('block1/unit_1/conv1/BatchNorm') make nested HDF5 groups; Keras 3
    spells them with '_'. Rewritten with '/' for '_', a Keras-written file must load the same."""
    src, out = os.path.join(FILES, "tiny_v1_legacy.h5"), tmp_path / "slashes.h5"
    with h5py.File(src, "r") as f, h5py.File(out, "w") as g:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        g.attrs["layer_names"] = [n.replace("_", "/").encode() for n in names]
        for n in names:
            group = g.require_group(n.replace("_", "/"))
            wnames = [w.decode() if isinstance(w, bytes) else w for w in f[n].attrs.get("weight_names", [])]
            group.attrs["weight_names"] = [f"{n.replace('_', '/')}/{w.rsplit('/', 1)[1]}:0".encode() for w in wnames]
            for w in wnames:
                group.create_dataset(f"{n.replace('_', '/')}/{w.rsplit('/', 1)[1]}:0", data=f[n][w][()])
    x = keras_reference_input((1, 40, 36, 3), 6).astype(np.float32)
    np.testing.assert_array_equal(load_keras_weights(tiny_model("tiny_v1"), out).eval()(x),
                                  load_keras_weights(tiny_model("tiny_v1"), src).eval()(x))


def test_a_file_for_another_architecture_is_refused():
    with pytest.raises(WeightsError, match="another architecture.*missing from the file.*conv2_block1_preact_bn"):
        load_keras_weights(tiny_model("tiny_v2"), os.path.join(FILES, "tiny_v1.weights.h5"))
    with pytest.raises(WeightsError, match=r"'predictions' kernel has shape \(16, 5\).*needs \(16, 4\)"):
        m = KerasResNet(1, [1, 2], [2, 4], num_classes=4)
        load_keras_weights(m, os.path.join(FILES, "tiny_v1_legacy.h5"))


@pytest.mark.parametrize("name", list(KERAS_FIXTURES))
def test_guess_model_from_layer_names(name):
    if not os.path.exists(fixture_path(name, "keras")):
        pytest.skip(f"no fixture for {name}")
    layers = {str(s).rsplit("/", 1)[0] for s in load_fixture(name, "keras")["layer_roles"]}
    assert guess_keras_model(layers) == name
    assert guess_keras_model({n.replace("_unit_", "/unit_") for n in layers}) == name


def test_bad_files(tmp_path):
    model = tiny_model("tiny_v1")
    with pytest.raises(FileNotFoundError):
        load_keras_weights(model, tmp_path / "nothing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(WeightsError, match="not an HDF5 file"):
        load_keras_weights(model, tmp_path / "text.h5")
    good = open(os.path.join(FILES, "tiny_v1_legacy.h5"), "rb").read()
    (tmp_path / "cut.h5").write_bytes(good[:len(good) // 2])
    with pytest.raises(WeightsError, match="cut.h5"):
        load_keras_weights(model, tmp_path / "cut.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError, match="neither a legacy Keras weights file"):
        load_keras_weights(model, tmp_path / "empty.h5")
    with h5py.File(tmp_path / "liar.h5", "w") as f:
        f.attrs["layer_names"] = [b"conv1_conv"]
    with pytest.raises(WeightsError, match="lists 'conv1_conv' but the file has no group"):
        load_keras_weights(model, tmp_path / "liar.h5")
    shutil.copy(os.path.join(FILES, "tiny_v1_legacy.h5"), tmp_path / "nan.h5")
    with h5py.File(tmp_path / "nan.h5", "r+") as f:
        f["conv1_bn/conv1_bn/gamma"][0] = np.nan
    with pytest.raises(WeightsError, match=r"'conv1_bn' gamma \(the model's bn1.weight\) holds non-finite values"):
        load_keras_weights(model, tmp_path / "nan.h5")


def test_file_info_and_predict_refuses_unknown_keras_net():
    assert keras_file_info(os.path.join(FILES, "tiny_v2.weights.h5")) == (None, 5, "names")
    with pytest.raises(ValueError, match="cannot tell which Keras ResNet"):
        load_pretrained(os.path.join(FILES, "tiny_v2.weights.h5"))


def test_keras_preprocessing_modes():
    pixels = np.array([[[10.0, 20.0, 30.0]]])
    np.testing.assert_allclose(keras_preprocess_input(pixels, "caffe"), [[[30 - 103.939, 20 - 116.779, 10 - 123.68]]],
                               rtol=1e-6)
    np.testing.assert_allclose(keras_preprocess_input(np.array([0.0, 127.5, 255.0]).repeat(3).reshape(3, 3), "tf"),
                               np.array([-1.0, 0.0, 1.0]).repeat(3).reshape(3, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        keras_preprocess_input(pixels, "torch")


def test_classify_uses_the_models_keras_preprocessing():
    Image = pytest.importorskip("PIL.Image", reason="needs Pillow")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8))
    model = load_keras_weights(tiny_model("tiny_v2", classifier_activation=None), os.path.join(FILES, "tiny_v2.weights.h5")).eval()
    assert model.preprocessing == "tf"
    (top,) = classify(model, [img], topk=2, crop=40, classes=list("abcde"))
    logits = model(preprocess_keras(img, "tf", size=40, data_format="channels_last"))[0].astype(np.float64)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [i for i, _, _ in top] == list(np.argsort(-p)[:2])
    assert top[0][2] == pytest.approx(p.max(), rel=1e-5)


def test_a_file_that_fails_anywhere_leaves_the_model_untouched(tmp_path):
    """All or nothing: the last layer's weight out of range fails the load after every other
    layer has been read; the model keeps every value it had."""
    src, bad = os.path.join(FILES, "tiny_v1_legacy.h5"), tmp_path / "late.h5"
    shutil.copy(src, bad)
    with h5py.File(bad, "r+") as f:
        kernel = f["predictions/predictions/kernel"][()].astype(np.float64)
        kernel[-1, -1] = 1e300                                 # finite in float64, inf as float32
        del f["predictions/predictions/kernel"]
        f["predictions/predictions/kernel"] = kernel
    model = tiny_model("tiny_v1")
    before = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=r"'predictions' kernel \(the model's fc.weight\) holds non-finite "
                                           r"values as float32 \(e.g. inf\)"):
        load_keras_weights(model, bad)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_the_reader_never_raises_h5py_errors(tmp_path):
    """A file h5py opens but cannot read (a dataset's bytes cut off) is a WeightsError naming the file."""
    raw = open(os.path.join(FILES, "tiny_v1.weights.h5"), "rb").read()
    (tmp_path / "cut.weights.h5").write_bytes(raw[:len(raw) - 4096])
    with pytest.raises(WeightsError, match="cut.weights.h5: "):
        load_keras_weights(tiny_model("tiny_v1"), tmp_path / "cut.weights.h5")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_predict_refuses_a_fifo_before_reading_it(tmp_path):
    """`minires predict --weights` on a FIFO hung in HDF5's open (and in the format check) before."""
    fifo = tmp_path / "weights.h5"
    os.mkfifo(fifo)
    with pytest.raises(WeightsError, match=r"weights.h5: a FIFO \(named pipe\), not a weights file"):
        load_pretrained(str(fifo))
