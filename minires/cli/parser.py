"""The ``minires`` parser: one subcommand per ``cmd_*`` function of commands.py."""
import argparse

from .. import __version__
from ..data import DATASETS
from ..data.folder import DEFAULT_IMAGE_SIZE
from ..predict.preprocess import MAX_IMAGE_SIZE
from ..train.runcheck import IMAGE_SIZE, Rule
from ..zoo import KERAS_MODELS, MODELS
from .commands import (cmd_evaluate, cmd_experiment_degradation, cmd_gradcheck, cmd_predict, cmd_summary,
                       cmd_train)
from .explain import METHODS, cmd_explain
from .options import DATA_ROOT_HELP, DEVICE_HELP, Parser, number, option, positive_int


def build_parser():
    """The ``minires`` parser: one subcommand per ``cmd_*`` function."""
    parser = Parser(prog="minires", description="ResNet from first principles in NumPy.")
    parser.add_argument("--version", action="version", version=f"minires {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_predict, _add_explain, _add_summary, _add_experiment, _add_gradcheck):
        add(sub)
    return parser


def _add_train(sub):
    p = sub.add_parser("train", help="train a model (default: ResNet-20 on the bundled 8x8 digits, CPU)",
                       description="Train a model. Every option has a default; a run folder gets config.json, "
                                   "metrics.csv, curves.png and the checkpoints last.npz and best.npz.")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default: resnet20)")
    p.add_argument("--data", help=f"one of: {', '.join(DATASETS)}, or a folder of class folders (your own images, "
                                  "e.g. pets/cat/*.jpg, pets/dog/*.jpg) (default: digits)")
    p.add_argument("--image-size", type=number(IMAGE_SIZE), metavar="S",
                   help=f"resize and centre-crop a folder's images to S x S pixels (default: {DEFAULT_IMAGE_SIZE})")
    p.add_argument("--epochs", type=option("epochs"), help="passes over the training set (default: 30)")
    p.add_argument("--val-fraction", type=option("val_fraction"), metavar="F",
                   help="of each class of the training set, held out to choose best.npz; the test set is measured "
                        "once, at the end, for it; 0: none, the last epoch is kept (default: 0.1)")
    p.add_argument("--batch-size", type=option("batch_size"),
                   help="images per step; per process under mpiexec (global batch: x processes) (default: 64)")
    p.add_argument("--lr", type=option("lr"), help="peak learning rate (default: 0.1)")
    p.add_argument("--momentum", type=option("momentum"), help="SGD momentum, in [0, 1) (default: 0.9)")
    p.add_argument("--weight-decay", type=option("weight_decay"), help="L2 penalty (default: 5e-4)")
    p.add_argument("--schedule", choices=["cosine", "step", "constant"],
                   help="learning-rate schedule; step: /10 at 50%% and 75%% (default: cosine)")
    p.add_argument("--warmup-epochs", type=option("warmup_epochs"), help="linear warm-up from 0 to --lr (default: 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], help=DEVICE_HELP + " (default: cpu)")
    p.add_argument("--dtype", choices=["float32", "float64"],
                   help="the weights' and activations' floating-point type (default: float32)")
    p.add_argument("--seed", type=option("seed"), help="initial weights and batch order (default: 0)")
    p.add_argument("--sync-bn", action="store_true", default=None,
                   help="under mpiexec: batch norm statistics over every process's images (SyncBatchNorm)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop and flip (default: on for CIFAR-10 and a folder, off for digits and MNIST)")
    p.add_argument("--out", help="run folder (default: runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue the run saved in RUN_DIR (or --out) exactly where it stopped; with --epochs N "
                        "it ends after N epochs instead (default: a new run)")
    p.add_argument("--data-root", help=DATA_ROOT_HELP)
    p.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="no curves.png")
    p.add_argument("--no-check-inputs", action="store_true",
                   help="skip the scan that refuses images holding NaN or infinity before training")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="test loss, accuracy and confusion matrix of a checkpoint",
                       description="Test loss, accuracy and confusion matrix (as text and confusion.png) of a "
                                   "checkpoint written by `minires train`.")
    p.add_argument("--checkpoint", required=True, help="a last.npz or best.npz from `minires train` (required)")
    p.add_argument("--model", choices=list(MODELS), metavar="MODEL",
                   help="check that the checkpoint holds this model (default: no check)")
    p.add_argument("--data", help="another data set with the same classes: a name or a folder (default: the run's)")
    p.add_argument("--device", choices=["cpu", "cuda"], help=DEVICE_HELP + " (default: the run's)")
    p.add_argument("--data-root", help=DATA_ROOT_HELP)
    p.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    p.add_argument("--out", help="folder for confusion.png (default: the checkpoint's)")
    p.set_defaults(func=cmd_evaluate)


def _add_predict(sub):
    p = sub.add_parser("predict", help="classify images with a checkpoint you trained, or published weights",
                       description="Top-k classes of each image, as a checkpoint of `minires train` or published "
                                   "weights see them (random weights, and a warning, without either).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything Pillow reads)")
    p.add_argument("--checkpoint", help="a best.npz of `minires train`: model, classes, preprocessing (default: none)")
    p.add_argument("--weights", help="a .pth, .safetensors or .npz state_dict (torchvision's resnet50-0676ba61.pth), "
                                     "a Keras .h5 / .weights.h5 or a TensorFlow checkpoint (x.ckpt) (default: none)")
    p.add_argument("--model", choices=list(MODELS) + list(KERAS_MODELS), metavar="MODEL", help="default: from the "
                   "file name (resnet50-0676ba61.pth -> resnet50), or a Keras file's layers; resnet50 without --weights")
    p.add_argument("--topk", type=positive_int(None), help="classes to print (default: 5, or all if fewer)")
    size = number(Rule(None, int, 1, MAX_IMAGE_SIZE, why="minires/predict/preprocess.py:MAX_IMAGE_SIZE"))
    p.add_argument("--resize", type=size, help="shorter side before the crop (default: 256; 232 for the V2 "
                                                f"weights; at most {MAX_IMAGE_SIZE})")
    p.add_argument("--crop", type=size, help=f"centre crop, in pixels (default: 224; at most {MAX_IMAGE_SIZE}, "
                                              "and at most --resize)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help=DEVICE_HELP)
    p.add_argument("--data-root", help=DATA_ROOT_HELP + "; for a checkpoint that does not record its classes")
    p.set_defaults(func=cmd_predict)


def _add_explain(sub):
    p = sub.add_parser("explain", help="where in an image the model finds its class: Grad-CAM or saliency, as a PNG",
                       description="The heat map of one image for one class (Grad-CAM or saliency, "
                                   "minires/explain.py) over the image as the model saw it, the top classes in the "
                                   "title. Model, weights and preprocessing as in `minires predict` (random weights, "
                                   "and a warning, without --checkpoint or --weights).")
    p.add_argument("image", metavar="IMAGE", help="an image file (anything Pillow reads)")
    p.add_argument("--checkpoint", help="a best.npz of `minires train`: model, classes, preprocessing (default: none)")
    p.add_argument("--weights", help="published weights, as for `minires predict`: a .pth, .safetensors or .npz "
                                     "state_dict, a Keras .h5 / .weights.h5 or a TensorFlow checkpoint (default: none)")
    p.add_argument("--model", choices=list(MODELS) + list(KERAS_MODELS), metavar="MODEL", help="default: from the "
                   "file name or a Keras file's layers, the checkpoint's; resnet50 without --weights")
    p.add_argument("--method", choices=list(METHODS), default="gradcam",
                   help="gradcam: which regions of the last stage speak for the class; saliency: |d score / d pixel|")
    p.add_argument("--target", type=number(Rule(None, int, 0)), metavar="CLASS",
                   help="the class index to explain (default: the top class)")
    p.add_argument("--layer", metavar="NAME", help="the layer Grad-CAM weighs, a name from model.named_modules() "
                   "('layer3', 'layer4.1') (default: the last stage)")
    p.add_argument("--out", metavar="FILE.png", help="the picture to write (default: IMAGE's stem + '-METHOD.png', "
                   "in the current folder)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help=DEVICE_HELP)
    p.set_defaults(func=cmd_explain)


def _add_summary(sub):
    p = sub.add_parser("summary", help="every layer of a model with its output shape and parameters",
                       description="Every layer of a model with its output shape and parameter count.")
    p.add_argument("--model", default="resnet50", choices=list(MODELS), metavar="MODEL",
                   help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--input", type=positive_int("each of C H W"), nargs=3, metavar=("C", "H", "W"),
                   help="input shape (default: 3 32 32 for the CIFAR nets, 3 224 224 for the others)")
    p.add_argument("--num-classes", type=positive_int(None), help="outputs of the last layer (default: the model's "
                   "own, 10 for the CIFAR nets resnet20 ... plain110, 1000 for the ImageNet nets)")
    p.add_argument("--depth", type=positive_int(None), help="1: stages, 2: blocks, ... (default: all)")
    p.set_defaults(func=cmd_summary)


def _add_experiment(sub):
    p = sub.add_parser("experiment", help="reproduce an experiment of the paper, small (degradation)",
                       description="Experiments from He et al. (2015) at laptop scale.")
    experiments = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    e = experiments.add_parser(
        "degradation", help="plain vs residual nets at two depths: training error against iterations",
        description="Train a plain and a residual CIFAR-style net (6n+2 layers) at each depth with the same "
                    "seed, batches and settings, and compare their training errors (the paper's Figures 1 and 6). "
                    "Writes degradation.png, degradation.csv (per step) and degradation.json (final numbers).")
    e.add_argument("--data", default="digits", choices=list(DATASETS), help="data set (digits: bundled, offline)")
    e.add_argument("--depths", type=positive_int("each depth"), nargs="+", default=[20, 56], metavar="D",
                   help="layers, each 6n+2: 8, 14, 20, 32, 44, 56, 110 ...")
    e.add_argument("--steps", type=positive_int(None), default=600, help="SGD steps per net")
    e.add_argument("--batch-size", type=option("batch_size"), default=64, help="images per step")
    e.add_argument("--lr", type=option("lr"), default=0.1, help="learning rate")
    e.add_argument("--momentum", type=option("momentum"), default=0.9, help="SGD momentum, in [0, 1)")
    e.add_argument("--weight-decay", type=option("weight_decay"), default=0.0,
                   help="L2 penalty (default 0: only how well the nets fit)")
    e.add_argument("--schedule", choices=["constant", "step", "cosine"], default="constant",
                   help="learning-rate schedule")
    e.add_argument("--eval-every", type=positive_int(None),
                   help="measure the whole training and test sets every N steps (default: only after the last step)")
    e.add_argument("--seed", type=option("seed"), default=0, help="initial weights and batch order")
    e.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help=DEVICE_HELP)
    e.add_argument("--out", help="output folder (default: runs/degradation-DATA-TIME)")
    e.add_argument("--data-root", help=DATA_ROOT_HELP)
    e.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    e.add_argument("--no-plot", action="store_true", help="no degradation.png")
    e.set_defaults(func=cmd_experiment_degradation)


def _add_gradcheck(sub):
    p = sub.add_parser("gradcheck", help="gradient-check every layer in float64 and print the tables",
                       description="Gradient-check every layer (and a small network) in float64 against central "
                                   "differences and print the tables; exit code 1 if any check fails.")
    p.add_argument("--seed", type=option("seed"), default=0, help="inputs and upstream gradients")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help=DEVICE_HELP)
    p.set_defaults(func=cmd_gradcheck)
