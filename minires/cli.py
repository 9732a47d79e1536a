"""The ``minires`` command (also ``python -m minires``)."""
import argparse
import os
import sys
import warnings

from . import __version__
from .data import DATASETS, DataNotice, is_folder_path
from .data.folder import DEFAULT_IMAGE_SIZE, MAX_IMAGE_SIZE as MAX_FOLDER_IMAGE_SIZE
from .predict.preprocess import MAX_IMAGE_SIZE
from .train.runcheck import OPTION_RULES, Rule
from .zoo import KERAS_MODELS, MODELS, get_model

# ----------------------------------------------------------------------------- option checks
# Every numeric option is checked when it is parsed: a bad value is one line naming the
# option, what it must be and what came, with exit code 2 (argparse's code for usage errors).


class UsageError(ValueError):
    """A bad option value found after parsing (e.g. --topk larger than the model's classes): exit code 2."""


def _number(rule):
    """An argparse ``type`` that parses an int or float and applies ``rule`` (train/runcheck.py's
    ``Rule``: the same rules as a config or checkpoint). A rule without ``what`` leaves the
    option's name to argparse's "argument --x:" prefix."""
    def check(text):
        try:
            value = rule.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule.what + ' ' if rule.what else ''}must be "
                                             f"{'an integer' if rule.kind is int else 'a number'}, got {text!r}") from None
        problem = rule.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    check.__name__ = rule.kind.__name__  # argparse names the type in some messages
    return check


def option(name):
    """The argparse type of a training option: ``OPTION_RULES[name]``."""
    return _number(OPTION_RULES[name])


def positive_int(what):
    return _number(Rule(what, int, 1))


class Parser(argparse.ArgumentParser):
    """argparse, with a one-line error (the usage is one ``--help`` away) and defaults in the help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends '(default: X)' to an option's help, unless the help already says its default or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.required:
            return text
        return super()._get_help_string(action)


def cmd_gradcheck(args):
    """Gradient-check every layer (and a small network) in float64 and print the tables."""
    from .teach.gradcheck_cases import run_gradchecks
    total = failures = 0
    for result in run_gradchecks(args.seed, args.device):
        print(result, end="\n\n")
        total += 1
        failures += not result.ok
    print(f"{total - failures} of {total} checks passed" + ("" if not failures else f", {failures} FAILED"))
    return 0 if not failures else 1


TRAIN_OPTIONS = ("model", "data", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                 "warmup_epochs", "device", "dtype", "seed", "augment", "sync_bn", "image_size")


def cmd_train(args):
    """Train a model; with no options, ResNet-20 on the bundled digits on the CPU."""
    import time

    from .parallel.mpi import get_world
    from .train.loop import fit
    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    if args.resume:
        out = args.resume if isinstance(args.resume, str) else args.out
        if out is None:
            raise ValueError("--resume needs the run folder: --resume RUN_DIR (or --out RUN_DIR --resume)")
        if given:
            raise ValueError("a resumed run keeps its saved configuration; drop "
                             + ", ".join("--" + k.replace("_", "-") for k in given))
        fit(out=out, resume=True, progress=not args.no_progress, plot=not args.no_plot, root=args.data_root,
            download=not args.no_download)
        return 0
    if given.get("data") not in DATASETS and is_folder_path(given.get("data")):
        given["data"] = os.path.abspath(given["data"])    # the config names the folder from anywhere
    cfg_name = f"{given.get('model', 'resnet20')}-{os.path.basename(given.get('data', 'digits'))}"
    out = args.out or os.path.join("runs", f"{cfg_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = get_world().broadcast_object(out)   # under mpiexec: rank 0's clock names the folder
    if os.path.exists(os.path.join(out, "last.npz")):
        raise ValueError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
    fit(out=out, progress=not args.no_progress, plot=not args.no_plot, root=args.data_root,
        download=not args.no_download, **given)
    return 0


def cmd_evaluate(args):
    """Test loss, accuracy and confusion matrix of a saved checkpoint."""
    from .data import as_trained
    from .train.evaluate import evaluate
    from .train.run import Run, make_config
    from .train.runcheck import check_training_checkpoint
    from .viz import confusion_matrix, format_confusion, plot_confusion
    if not os.path.exists(args.checkpoint):
        raise FileNotFoundError(f"no checkpoint at {args.checkpoint}")
    checked = check_training_checkpoint(args.checkpoint, resume=False)   # every problem, before any work
    saved = checked[0]
    cfg = make_config(**dict(saved, model=args.model or saved["model"], data=args.data or saved["data"],
                             device=args.device or saved["device"]))
    if args.model and args.model != saved["model"]:
        raise ValueError(f"{args.checkpoint} holds a {saved['model']}, not a {args.model}")
    run = Run(cfg, root=args.data_root, download=not args.no_download)
    run.load(args.checkpoint, checked)
    if checked[2].get("dataset") is not None:    # the classes and statistics the model was trained with
        run.test_loader.dataset = as_trained(run.test_set, checked[2]["dataset"], args.checkpoint)
    loss, acc, preds, labels = evaluate(run.model, run.test_loader)
    matrix = confusion_matrix(labels, preds, run.test_set.num_classes)
    print(f"{cfg['model']} on {cfg['data']} ({len(labels)} test images): loss {loss:.4f}, accuracy {acc:.2%}")
    print(format_confusion(matrix, run.test_set.classes))
    picture = os.path.join(args.out or os.path.dirname(os.path.abspath(args.checkpoint)), "confusion.png")
    os.makedirs(os.path.dirname(picture), exist_ok=True)
    plot_confusion(matrix, run.test_set.classes, picture, title=f"{cfg['model']} on {cfg['data']}: {acc:.2%}")
    print(f"saved {picture}")
    return 0


def cmd_predict(args):
    """Top-k classes of each image, with a checkpoint of `minires train` or with published weights."""
    from .predict.classify import classify, default_resize, load_pretrained, random_model
    from .predict.trained import classify_trained, load_trained
    for image in args.images:
        if not os.path.exists(image):
            raise FileNotFoundError(f"no image at {image}")
    if args.checkpoint is not None:              # the model, class names and preprocessing are the checkpoint's
        extra = [o for o, v in (("--weights", args.weights), ("--resize", args.resize), ("--crop", args.crop)) if v]
        if extra:
            raise UsageError(f"--checkpoint brings its own model and preprocessing; drop {', '.join(extra)}")
        model, info = load_trained(args.checkpoint, device=args.device, root=args.data_root)
        if args.model and args.model != info["name"]:
            raise ValueError(f"{args.checkpoint} holds a {info['name']}, not a {args.model}")
        results = classify_trained(model, info, args.images, _topk(args.topk, len(info["classes"])))
    else:
        if args.weights is None:
            model = random_model(args.model or "resnet50", device=args.device)
            print(f"WARNING: no --checkpoint or --weights, so {args.model or 'resnet50'}'s weights are random (seed 0):"
                  " the classes below mean nothing. Published weights: see the README.", file=sys.stderr)
        else:
            model = load_pretrained(args.weights, args.model, device=args.device)
            if getattr(model, "weights_note", None):
                print(f"note: {model.weights_note}", file=sys.stderr)
        resize = args.resize or (default_resize(args.weights) if args.weights else 256)
        results = classify(model, args.images, topk=_topk(args.topk, model.fc.weight.shape[0]), resize=resize,
                           crop=args.crop or 224)
    for image, top in zip(args.images, results):
        print(f"{image}:")
        for rank, (index, name, p) in enumerate(top, 1):
            print(f"  {rank}. {p:7.2%}  {name}  ({index})")
    return 0


def _topk(topk, classes):
    """--topk, checked against the model's number of classes; 5 (or all, if fewer) when not given."""
    if topk is not None and topk > classes:
        raise UsageError(f"--topk must be at most the model's number of classes ({classes}), got {topk}")
    return min(5, classes) if topk is None else topk


def cmd_experiment_degradation(args):
    """Plain vs residual nets at two or more depths, trained the same way: the paper's Figure 6, small."""
    import time

    from .teach.experiments import degradation
    out = args.out or os.path.join("runs", f"degradation-{args.data}-{time.strftime('%Y%m%d-%H%M%S')}")
    result = degradation(data=args.data, depths=args.depths, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                         eval_every=args.eval_every, seed=args.seed, device=args.device, root=args.data_root,
                         download=not args.no_download, out=out, plot=not args.no_plot)
    print("\n" + result["summary"])
    written = [os.path.join(out, f"degradation.{ext}") for ext in ("csv", "json", "png")]
    print("wrote " + ", ".join(p for p in written if os.path.exists(p)))
    return 0


def cmd_summary(args):
    from .teach.summary import summary
    from .models import CifarResNet
    options = {} if args.num_classes is None else {"num_classes": args.num_classes}  # else the model's own
    model = get_model(args.model, in_channels=3 if args.input is None else args.input[0], **options)
    shape = args.input or ((3, 32, 32) if isinstance(model, CifarResNet) else (3, 224, 224))
    print(summary(model, tuple(shape), depth=args.depth))
    return 0


DEVICE_HELP = "cpu (NumPy) or cuda (CuPy on an NVIDIA GPU)"
DATA_ROOT_HELP = "where data sets are kept (default: $MINIRES_DATA or ~/.cache/minires)"
IMAGE_SIZE = Rule("the image size", int, 1, MAX_FOLDER_IMAGE_SIZE, why="minires/data/folder.py:MAX_IMAGE_SIZE")


def build_parser():
    """The ``minires`` parser: one subcommand per ``cmd_*`` function."""
    parser = Parser(prog="minires", description="ResNet from first principles in NumPy.")
    parser.add_argument("--version", action="version", version=f"minires {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_predict, _add_summary, _add_experiment, _add_gradcheck):
        add(sub)
    return parser


def _add_train(sub):
    p = sub.add_parser("train", help="train a model (default: ResNet-20 on the bundled 8x8 digits, CPU)",
                       description="Train a model. Every option has a default; a run folder gets config.json, "
                                   "metrics.csv, curves.png and the checkpoints last.npz and best.npz.")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default: resnet20)")
    p.add_argument("--data", help=f"one of: {', '.join(DATASETS)}, or a folder of class folders (your own images, "
                                  "e.g. pets/cat/*.jpg, pets/dog/*.jpg) (default: digits)")
    p.add_argument("--image-size", type=_number(IMAGE_SIZE), metavar="S",
                   help=f"resize and centre-crop a folder's images to S x S pixels (default: {DEFAULT_IMAGE_SIZE})")
    p.add_argument("--epochs", type=option("epochs"), help="passes over the training set (default: 30)")
    p.add_argument("--batch-size", type=option("batch_size"),
                   help="images per step; per process under mpiexec (global batch: x processes) (default: 64)")
    p.add_argument("--lr", type=option("lr"), help="peak learning rate (default: 0.1)")
    p.add_argument("--momentum", type=option("momentum"), help="SGD momentum, in [0, 1) (default: 0.9)")
    p.add_argument("--weight-decay", type=option("weight_decay"), help="L2 penalty (default: 5e-4)")
    p.add_argument("--schedule", choices=["cosine", "step", "constant"],
                   help="learning-rate schedule; step: /10 at 50%% and 75%% (default: cosine)")
    p.add_argument("--warmup-epochs", type=option("warmup_epochs"), help="linear warm-up from 0 to --lr (default: 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], help=DEVICE_HELP + " (default: cpu)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="(default: float32)")
    p.add_argument("--seed", type=option("seed"), help="initial weights and batch order (default: 0)")
    p.add_argument("--sync-bn", action="store_true", default=None,
                   help="under mpiexec: batch norm statistics over every process's images (SyncBatchNorm)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop and flip (default: on for CIFAR-10 and a folder, off for digits and MNIST)")
    p.add_argument("--out", help="run folder (default: runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue the run saved in RUN_DIR (or --out) exactly where it stopped (default: a new run)")
    p.add_argument("--data-root", help=DATA_ROOT_HELP)
    p.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="no curves.png")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="test loss, accuracy and confusion matrix of a checkpoint",
                       description="Test loss, accuracy and confusion matrix (as text and confusion.png) of a "
                                   "checkpoint written by `minires train`.")
    p.add_argument("--checkpoint", required=True, help="a last.npz or best.npz from `minires train` (required)")
    p.add_argument("--model", help="check that the checkpoint holds this model (default: no check)")
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
    size = _number(Rule(None, int, 1, MAX_IMAGE_SIZE, why="minires/predict/preprocess.py:MAX_IMAGE_SIZE"))
    p.add_argument("--resize", type=size, help="shorter side before the crop (default: 256; 232 for the V2 "
                                                f"weights; at most {MAX_IMAGE_SIZE})")
    p.add_argument("--crop", type=size, help=f"centre crop, in pixels (default: 224; at most {MAX_IMAGE_SIZE}, "
                                              "and at most --resize)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help=DEVICE_HELP)
    p.add_argument("--data-root", help=DATA_ROOT_HELP + "; for a checkpoint that does not record its classes")
    p.set_defaults(func=cmd_predict)


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


def main(argv=None):
    """Run the command; returns the exit code (0 ok, 1 failed, 2 bad usage, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) and bad options (2): a code, for callers and tests
        return e.code
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _notes_on_one_line(warnings.showwarning)
            return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        _end_other_processes("interrupted")
        return 130
    except UsageError as e:
        print(f"minires {args.command}: error: {e} (see: minires {args.command} --help)", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, RuntimeError, OSError, ArithmeticError, ImportError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError would add quotes
        print(f"minires {args.command}: error: {message}", file=sys.stderr)
        _end_other_processes(f"minires {args.command} failed on this rank; ending every rank")
        return 1


def _notes_on_one_line(show):
    """``warnings.showwarning`` that prints a DataNotice as one line, ``note: ...``, like the other
    notes of the command line; any other warning as Python prints it."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataNotice):
            print(f"note: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


def _end_other_processes(message):
    """Under mpiexec, a rank that fails ends them all (the others may wait for it in an all-reduce)."""
    if "minires.parallel.mpi" in sys.modules:
        from .parallel.mpi import abort_others, current_world
        if current_world() is not None:
            abort_others(current_world(), message)


if __name__ == "__main__":
    sys.exit(main())
