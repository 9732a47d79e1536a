"""Write tests/fixtures/keras/: Keras 3 (JAX backend, no TensorFlow) as the oracle.

    python -m venv /tmp/kerasvenv && /tmp/kerasvenv/bin/pip install keras jax h5py numpy
    PYTHONPATH=tests:. /tmp/kerasvenv/bin/python tools/make_keras_fixtures.py [name ...]

For every model in ``keras_reference.KERAS_FIXTURES`` (keras.applications' ResNet50 ... and
ResNet50V2 ..., and the seed tutorial's TensorFlow ResNet-34/50/101, rebuilt here with Keras
layers as the seed builds them), in float64: seeded weights (tests/keras_reference.py), an
NHWC input of ``INPUT_SHAPE``, and Keras's eval output, train-mode output, input gradient,
a few parameter gradients and moving statistics after the train-mode forward (JAX's
``stateless_call`` + ``jax.grad``). Also the tiny networks of ``TINY``, whose Keras-written
weight files (Keras 3 ``.weights.h5`` and the legacy ``.h5`` layout) are committed in
``files/`` with their float32 outputs. The format is in tools/README.md. Keras 3 forbids '/'
in layer names, so the seed's ``block1/unit_1/conv1`` is ``block1_unit_1_conv1`` here;
minires reads either spelling.
"""
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402
from keras.src.applications import resnet as kresnet  # noqa: E402
from keras.src import backend as keras_backend  # noqa: E402
from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from keras_reference import (BRANCH_GAIN, INPUT_SHAPE, KERAS_FIXTURES, SEED_INPUT, SEED_UPSTREAM,  # noqa: E402
                             SEED_WEIGHTS, TINY, TINY_INPUT_SHAPE, keras_reference_input, keras_reference_upstream,
                             keras_reference_weights)
from reference import sample_indices  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "keras")


def keep_float64(result_type):
    """Keras 3 computes batch norm and means in ``result_type(dtype, "float32")``, and its promotion
    rules make that float32 even for a float64 input: its float64 outputs would be only
    float32-accurate (~1e-7). Wrapped by this, a float64 operand keeps the result float64;
    nothing else changes, so the oracle is float64 throughout."""
    def wrapped(*dtypes):
        result = result_type(*dtypes)
        if result == "float32" and any(str(getattr(d, "name", d)) == "float64" for d in dtypes):
            return "float64"
        return result
    return wrapped


keras_dtypes.result_type = keras_backend.result_type = keep_float64(keras_dtypes.result_type)
SAMPLE_OVER, SAMPLE_COUNT = 20_000, 2_000


def seed_resnet(depth, input_shape, classes=1000):
    """The seed's TensorFlow ResNet: SAME padding, BatchNormalization(momentum=0.9, epsilon=1e-5)
    (1.001e-5 on the shortcut), stride on the 3x3, softmax; its layer names with '_' for '/'."""
    blocks = {34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
    bottleneck = depth >= 50

    def bn(eps, name):
        return L.BatchNormalization(momentum=0.9, epsilon=eps, name=name)

    x_in = L.Input(input_shape)
    y = L.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="conv1")(x_in)
    y = L.ReLU()(bn(1e-5, "conv1_BatchNorm")(y))
    y = L.MaxPooling2D(3, strides=2, padding="same", name="pool1")(y)
    inplanes = 64
    for s, (n, planes) in enumerate(zip(blocks, [64, 128, 256, 512])):
        out_ch = 4 * planes if bottleneck else planes
        for u in range(n):
            name = f"block{s + 1}_unit_{u + 1}"
            stride = 2 if u == 0 and s > 0 else 1
            shortcut = y
            if stride != 1 or inplanes != out_ch:
                shortcut = L.Conv2D(out_ch, 1, strides=stride, use_bias=False, name=f"{name}_shortcut")(y)
                shortcut = bn(1.001e-5, f"{name}_shortcut_BatchNorm")(shortcut)
            if bottleneck:
                h = L.Conv2D(planes, 1, use_bias=False, name=f"{name}_conv1")(y)
                h = L.ReLU()(bn(1e-5, f"{name}_conv1_BatchNorm")(h))
                h = L.Conv2D(planes, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv2")(h)
                h = L.ReLU()(bn(1e-5, f"{name}_conv2_BatchNorm")(h))
                h = L.Conv2D(out_ch, 1, use_bias=False, name=f"{name}_conv3")(h)
                h = bn(1e-5, f"{name}_conv3_BatchNorm")(h)
            else:
                h = L.Conv2D(planes, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(y)
                h = L.ReLU()(bn(1e-5, f"{name}_conv1_BatchNorm")(h))
                h = L.Conv2D(planes, 3, padding="same", use_bias=False, name=f"{name}_conv2")(h)
                h = bn(1e-5, f"{name}_conv2_BatchNorm")(h)
            y = L.ReLU()(L.Add()([h, shortcut]))
            inplanes = out_ch
    y = L.GlobalAveragePooling2D()(y)
    y = L.Dense(classes, activation="softmax", name="logits")(y)
    return keras.Model(x_in, y, name=f"seed_resnet{depth}")


def build(name, input_shape):
    kind = KERAS_FIXTURES[name]
    if kind == "seed":
        return seed_resnet(int(name.split("resnet")[1]), input_shape)
    return getattr(keras.applications, kind)(weights=None, input_shape=input_shape)


def tiny(version, layers, widths, input_shape, classes=5):
    """keras.applications' ResNet with a small custom stack: the committed weight files."""
    def stack_fn(x):
        for i, (n, w) in enumerate(zip(layers, widths)):
            if version == 1:
                x = kresnet.stack_residual_blocks_v1(x, w, n, stride1=1 if i == 0 else 2, name=f"conv{i + 2}")
            else:
                last = i == len(layers) - 1
                x = kresnet.stack_residual_blocks_v2(x, w, n, stride1=1 if last else 2, name=f"conv{i + 2}")
        return x
    return kresnet.ResNet(stack_fn, version == 2, True, weights=None, input_shape=input_shape, classes=classes,
                          name=f"tiny_v{version}")


def layer_roles(model):
    """{layer name: [(role, shape)]} of every layer with weights, in Keras's order."""
    out = {}
    for layer in model.layers:
        if layer.weights:
            out[layer.name] = [(v.path.rsplit("/", 1)[-1], tuple(v.shape)) for v in layer.weights]
    return out


def set_reference_weights(model, seed=SEED_WEIGHTS):
    arrays = keras_reference_weights(layer_roles(model), seed, BRANCH_GAIN)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([a for _, a in arrays[layer.name]])


def store(fx, name, value):
    value = np.asarray(value)
    if value.size > SAMPLE_OVER:
        idx = sample_indices(value.size, SAMPLE_COUNT, 3, name)
        fx[name + "__idx"], fx[name + "__val"] = idx, value.reshape(-1)[idx]
        fx[name + "__shape"] = np.array(value.shape, dtype=np.int64)
    else:
        fx[name] = value


def grad_layers(model):
    """The parameters whose gradients are stored: stem conv, one batch norm deep inside, the top."""
    names = [layer.name for layer in model.layers if layer.weights]
    bns = [n for n in names if n.endswith(("_bn", "BatchNorm"))]
    return {names[0], bns[len(bns) // 2], names[-1]}


def make(name):
    t0 = time.time()
    keras.config.set_floatx("float64")
    model = build(name, INPUT_SHAPE[1:])
    set_reference_weights(model)
    x = keras_reference_input(INPUT_SHAPE, SEED_INPUT)
    fx = {"model": np.array(name), "keras_model": np.array(KERAS_FIXTURES[name]),
          "input_shape": np.array(INPUT_SHAPE, dtype=np.int64), "seed_weights": np.array(SEED_WEIGHTS),
          "seed_input": np.array(SEED_INPUT), "seed_upstream": np.array(SEED_UPSTREAM),
          "branch_gain": np.array(BRANCH_GAIN), "keras_version": np.array(keras.__version__),
          "keras_param_count": np.array(model.count_params(), dtype=np.int64)}
    roles = layer_roles(model)
    fx["layer_roles"] = np.array([f"{n}/{r}" for n, rs in roles.items() for r, _ in rs])
    shapes = [s for rs in roles.values() for _, s in rs]
    fx["layer_shapes"] = np.array([list(s) + [-1] * (4 - len(s)) for s in shapes], dtype=np.int64)

    store(fx, "out_eval", np.asarray(model(x, training=False)))
    upstream = keras_reference_upstream((INPUT_SHAPE[0], model.output_shape[-1]), SEED_UPSTREAM)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def loss(xx, tvars):
        y, new_ntv = model.stateless_call(tvars, ntv, xx, training=True)
        return jnp.sum(y * upstream), (y, new_ntv)

    (gx, gtv), (y_train, new_ntv) = jax.grad(loss, argnums=(0, 1), has_aux=True)(jnp.asarray(x), tv)
    store(fx, "out_train", np.asarray(y_train))
    store(fx, "grad_input", np.asarray(gx))
    wanted = grad_layers(model)
    for v, g in zip(model.trainable_variables, gtv):
        layer, role = v.path.rsplit("/", 1)
        if layer in wanted:
            store(fx, f"grad/{layer}/{role}", np.asarray(g))
    for v, value in zip(model.non_trainable_variables, new_ntv):
        layer, role = v.path.rsplit("/", 1)
        if layer in wanted:
            store(fx, f"moving/{layer}/{role}", np.asarray(value))
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".npz")
    np.savez_compressed(path, **fx)
    print(f"{name:20s} {time.time() - t0:6.1f}s  {os.path.getsize(path) / 1e3:7.1f} kB  "
          f"params {model.count_params():,}  max prob {float(np.max(fx['out_eval'])):.3f}")


def make_tiny(name):
    keras.config.set_floatx("float32")
    spec = TINY[name]
    model = tiny(spec["version"], spec["layers"], spec["widths"], TINY_INPUT_SHAPE[1:])
    set_reference_weights(model, seed=3)
    files = os.path.join(OUT, "files")
    os.makedirs(files, exist_ok=True)
    model.save_weights(os.path.join(files, f"{name}.weights.h5"))
    import h5py
    with h5py.File(os.path.join(files, f"{name}_legacy.h5"), "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    x = keras_reference_input(TINY_INPUT_SHAPE, SEED_INPUT).astype(np.float32)
    np.savez_compressed(os.path.join(files, f"{name}.npz"), model=np.array(name), spec=np.array(json.dumps(spec)),
                        input_shape=np.array(TINY_INPUT_SHAPE), seed_input=np.array(SEED_INPUT),
                        out_eval=np.asarray(model(x, training=False)), keras_version=np.array(keras.__version__))
    print(f"{name}: {sorted(os.listdir(files))}")


def main(names):
    names = names or list(KERAS_FIXTURES) + list(TINY)
    for name in names:
        (make_tiny if name in TINY else make)(name)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"tests/fixtures/keras: {total / 1e6:.2f} MB")
    assert total < 5e6, "the Keras fixtures must stay under 5 MB"


if __name__ == "__main__":
    main(sys.argv[1:])
