"""Prediction: published weights, or a checkpoint you trained, in; class names out.

    classify.py          load_pretrained, random_model, classify
    preprocess.py        torchvision's ImageNet preprocessing (resize, centre crop, normalise)
    preprocess_keras.py  keras.applications' two modes ("caffe", "tf")
    imagenet.py          the 1,000 ImageNet class names, decode_predictions
    trained.py           load_trained, classify_trained: a checkpoint of `minires train` on your images
"""
from .classify import classify, default_resize, guess_model, load_keras_pretrained, load_pretrained, random_model
from .imagenet import decode_predictions, imagenet_classes
from .preprocess import preprocess_imagenet
from .trained import classify_trained, load_trained

__all__ = ["classify", "default_resize", "guess_model", "load_keras_pretrained", "load_pretrained", "random_model",
           "decode_predictions", "imagenet_classes", "preprocess_imagenet", "load_trained", "classify_trained"]
