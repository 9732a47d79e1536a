"""The Keras flavour: the seed tutorial's TensorFlow ResNets and keras.applications' ResNets.

    layers.py     Keras's batch norm conventions, softmax, Keras layer names
    blocks.py     keras.applications' v1 and v2 (pre-activation) bottlenecks
    models.py     tf_resnet34/50/101, keras_resnet50 ... keras_resnet152v2, KERAS_MODELS
    weights.py    loading .h5 / .weights.h5 files and TensorFlow checkpoints (without TensorFlow)
    structure.py  pairing a checkpoint's layers with a model's when their names say nothing
"""
from .layers import KerasBatchNorm2d, Softmax
from .models import (KERAS_MODELS, KerasResNet, TFResNet, keras_resnet50, keras_resnet50v2, keras_resnet101,
                     keras_resnet101v2, keras_resnet152, keras_resnet152v2, tf_resnet34, tf_resnet50, tf_resnet101)
from .weights import keras_file_info, load_keras_weights

__all__ = ["KerasBatchNorm2d", "Softmax", "KERAS_MODELS", "KerasResNet", "TFResNet", "keras_file_info",
           "load_keras_weights", *KERAS_MODELS]
