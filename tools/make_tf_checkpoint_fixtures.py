"""Write small real TensorFlow checkpoints for tests/test_weights_tf_checkpoint.py (oracle fixtures).

    TF_USE_LEGACY_KERAS=1 /work/tfvenv/bin/python tools/make_tf_checkpoint_fixtures.py [OUT]

Needs TensorFlow (tested: tensorflow-cpu 2.21.0, tf-keras 2.21.0) in a venv of its own; never a
dependency of minires or its tests. OUT defaults to tests/fixtures/tf_checkpoint/, which gets:

* ``vars/x.ckpt.*``: ``tf.train.Checkpoint(...).write`` of variables of many dtypes and shapes
  (a scalar, bfloat16, float16, a zero-size tensor, int, uint8, bool, complex);
* ``keras/``: a tiny Keras 2 model's ``save_weights("x.ckpt")`` (so with a ``checkpoint`` file);
* ``sharded/x.ckpt.*``: three variables in several data shards (``MaxShardSizePolicy`` with a
  limit that cuts no tensor: a smaller one cuts a tensor into slices);
* ``sliced/x.ckpt.*``: a 4-element float64 variable cut into slices by a 24-byte shard policy
  (what minires refuses: partitioned tensors);
* ``expected.npz``: TensorFlow's own reading of each (``tf.train.load_checkpoint``), keyed
  ``"<folder>/<key>"``; bfloat16 widened to float32. String tensors are listed under
  ``"<folder>/<key>"`` as an empty array named in ``__strings__``.
"""
import os
import shutil
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "tf_checkpoint")


def variables(rng):
    return {
        "conv": tf.Variable(rng.standard_normal((3, 3, 2, 4)).astype(np.float32)),
        "scale": tf.Variable(np.float64(rng.standard_normal())),
        "bf16": tf.Variable(tf.constant(rng.standard_normal(5).astype(np.float32), dtype=tf.bfloat16)),
        "half": tf.Variable(rng.standard_normal((2, 3)).astype(np.float16)),
        "empty": tf.Variable(np.zeros((0, 3), np.float32)),
        "steps": tf.Variable(np.int64(123456789012)),
        "counts": tf.Variable(np.array([-2, 0, 7], np.int32)),
        "pixels": tf.Variable(rng.integers(0, 256, (2, 2, 3)).astype(np.uint8)),
        "mask": tf.Variable(np.array([True, False, True])),
        "phase": tf.Variable(np.array([1 + 2j, -0.5j], np.complex64)),
    }


def expected(prefix, folder):
    reader = tf.train.load_checkpoint(prefix)
    out, strings = {}, []
    for key, _ in tf.train.list_variables(prefix):
        value = reader.get_tensor(key)
        if isinstance(value, bytes) or getattr(value, "dtype", None) == object:
            strings.append(f"{folder}/{key}")
            continue
        value = np.asarray(value)
        if value.dtype.name == "bfloat16":
            value = value.astype(np.float32)
        out[f"{folder}/{key}"] = value
    return out, strings


def main(out=DEFAULT_OUT):
    rng = np.random.default_rng(24)
    for sub in ("vars", "keras", "sharded", "sliced"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    arrays, strings = {}, []

    ckpt = tf.train.Checkpoint(**variables(rng))
    prefixes = {"vars": ckpt.write(os.path.join(out, "vars", "x.ckpt"))}
    small = tf.train.Checkpoint(w=tf.Variable(rng.standard_normal((4, 4)).astype(np.float32)),
                                v=tf.Variable(rng.standard_normal((2, 8)).astype(np.float32)),
                                b=tf.Variable(rng.standard_normal(3).astype(np.float16)),
                                n=tf.Variable(np.int64(7)))
    for limit in (80, 96, 128, 160):             # the smallest shard size that cuts no tensor into slices
        shutil.rmtree(os.path.join(out, "sharded"), ignore_errors=True)
        policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=limit)
        prefixes["sharded"] = small.write(os.path.join(out, "sharded", "x.ckpt"),
                                          options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
        raw = open(prefixes["sharded"] + ".index", "rb").read()
        if not any(b"\x00%s/" % name in raw for name in (b"w", b"v", b"b", b"n")):   # a slice's key: \0name\0spec
            break
    sliced = tf.train.Checkpoint(b=tf.Variable(np.arange(4, dtype=np.float64)))
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=24)    # the 32-byte tensor is cut
    prefixes["sliced"] = sliced.write(os.path.join(out, "sliced", "x.ckpt"),
                                      options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))

    model = tf.keras.Sequential([tf.keras.layers.Conv2D(4, 3, input_shape=(8, 8, 3)),
                                 tf.keras.layers.BatchNormalization(), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(2)])
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32) + (2.0 if "variance" in w.name else 0.0))
    model.save_weights(os.path.join(out, "keras", "x.ckpt"))
    prefixes["keras"] = os.path.join(out, "keras", "x.ckpt")

    for folder, prefix in prefixes.items():
        if folder == "sliced":
            continue
        got, names = expected(prefix, folder)
        arrays.update(got)
        strings += names
    shards = [n for n in os.listdir(os.path.join(out, "sharded")) if ".data-" in n]
    assert len(shards) >= 2, shards
    np.savez(os.path.join(out, "expected.npz"), __strings__=np.array(strings), **arrays)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out}: {len(arrays)} tensors, {total} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
