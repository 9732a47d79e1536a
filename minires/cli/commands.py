"""What each subcommand of ``minires`` does, once its options are parsed: one ``cmd_*`` function
each, returning the exit code. minires's own modules are imported inside them, so that
``minires --help`` stays quick.
"""
import os
import sys

from ..data import DATASETS, data_problem, is_folder_path
from ..files import check_folder, check_regular_file, missing
from ..zoo import MODELS, get_model
from .options import UsageError


def cmd_gradcheck(args):
    """Gradient-check every layer (and a small network) in float64 and print the tables."""
    from ..teach.gradcheck_cases import run_gradchecks
    total = failures = 0
    for result in run_gradchecks(args.seed, args.device):
        print(result, end="\n\n")
        total += 1
        failures += not result.ok
    print(f"{total - failures} of {total} checks passed" + ("" if not failures else f", {failures} FAILED"))
    return 0 if not failures else 1


TRAIN_OPTIONS = ("model", "data", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                 "warmup_epochs", "device", "dtype", "seed", "augment", "sync_bn", "image_size", "val_fraction")


def cmd_train(args):
    """Train a model; with no options, ResNet-20 on the bundled digits on the CPU. The exit code is
    the run's: 0, or 130 / 143 when Ctrl-C / SIGTERM stopped it (after saving)."""
    import time

    from ..parallel.mpi import get_world
    from ..train.loop import fit
    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    if given.get("model") is not None and given["model"] not in MODELS:      # a name: a usage error
        raise UsageError(f"unknown model {given['model']!r:.80}; choose one of: {', '.join(MODELS)}")
    check_data_option(given.get("data"))
    common = dict(progress=not args.no_progress, plot=not args.no_plot, root=args.data_root,
                  download=not args.no_download, check_inputs=not args.no_check_inputs)
    if args.resume:
        out = args.resume if isinstance(args.resume, str) else args.out
        if out is None:
            raise UsageError("--resume needs the run folder: --resume RUN_DIR (or --out RUN_DIR --resume)")
        other = [k for k in given if k != "epochs"]
        if other:       # fit says so too; here with the options' names as they were typed
            raise UsageError("a resumed run keeps its saved configuration, except its length (--epochs); drop "
                             + ", ".join("--" + k.replace("_", "-") for k in other))
        return fit(out=out, resume=True, epochs=given.get("epochs"), **common).exit_code
    if given.get("data") not in DATASETS and is_folder_path(given.get("data")):
        given["data"] = os.path.abspath(given["data"])    # the config names the folder from anywhere
    cfg_name = f"{given.get('model', 'resnet20')}-{os.path.basename(given.get('data', 'digits'))}"
    out = args.out or os.path.join("runs", f"{cfg_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = get_world().broadcast_object(out)   # under mpiexec: rank 0's clock names the folder
    if os.path.exists(os.path.join(out, "last.npz")):
        raise ValueError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
    return fit(out=out, **common, **given).exit_code


def cmd_evaluate(args):
    """Test loss, accuracy and confusion matrix of a saved checkpoint."""
    from ..data import as_trained
    from ..train.evaluate import evaluate
    from ..train.run import Run, make_config
    from ..train.runcheck import check_training_checkpoint
    from ..viz import confusion_matrix, format_confusion, plot_confusion
    check_data_option(args.data)
    if args.out is not None:
        check_folder(args.out, NotADirectoryError)
    checked = check_training_checkpoint(args.checkpoint, resume=False)   # every problem, before any work
    saved = checked[0]
    if args.model and args.model != saved["model"]:
        raise ValueError(f"{args.checkpoint} holds a {saved['model']}, not a {args.model}")
    cfg = make_config(**dict(saved, model=args.model or saved["model"], data=args.data or saved["data"],
                             device=args.device or saved["device"]))
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


def check_data_option(data):
    """``--data``: a data set's name or a folder. An unknown name is a mistake of the command line
    (UsageError, exit code 2); a path that is not there or is a file is not (exit code 1)."""
    if data is None or data in DATASETS:
        return
    check_folder(data, NotADirectoryError, "folder of class folders")
    if not is_folder_path(data):
        raise UsageError(data_problem(data))
    if not os.path.exists(data):
        raise missing(data, "folder")


def cmd_predict(args):
    """Top-k classes of each image, with a checkpoint of `minires train` or with published weights."""
    from ..predict.classify import classify, default_resize, load_pretrained, random_model
    from ..predict.trained import classify_trained, load_trained
    if args.checkpoint is not None:              # the model, class names and preprocessing are the checkpoint's
        extra = [o for o, v in (("--weights", args.weights), ("--resize", args.resize), ("--crop", args.crop)) if v]
        if extra:
            raise UsageError(f"--checkpoint brings its own model and preprocessing; drop {', '.join(extra)}")
    for image in args.images:                    # every image there, before a model is loaded
        check_regular_file(image, OSError, "image", note=f"; give the images in it (e.g. {image}/*.jpg)")
    if args.checkpoint is not None:
        model, info = load_trained(args.checkpoint, device=args.device, root=args.data_root)
        if args.model and args.model != info["name"]:
            raise ValueError(f"{args.checkpoint} holds a {info['name']}, not a {args.model}")
        results = classify_trained(model, info, args.images, _topk(args.topk, len(info["classes"])))
    else:
        model = (load_pretrained(args.weights, args.model, device=args.device) if args.weights is not None
                 else random_model(args.model or "resnet50", device=args.device))
        resize = args.resize or (default_resize(args.weights) if args.weights else 256)
        crop = args.crop or 224
        if crop > resize and getattr(model, "preprocessing", None) not in ("caffe", "tf"):   # Keras: no resize
            default = "" if args.resize else ", its default"
            raise UsageError(f"--crop ({crop}) must be at most --resize ({resize}{default}), the shorter side the "
                             "image is resized to before the crop is cut from it")
        topk = _topk(args.topk, model.fc.weight.shape[0])
        if args.weights is None:
            print(f"WARNING: no --checkpoint or --weights, so {args.model or 'resnet50'}'s weights are random (seed 0):"
                  " the classes below mean nothing. Published weights: see the README.", file=sys.stderr)
        elif getattr(model, "weights_note", None):
            print(f"note: {model.weights_note}", file=sys.stderr)
        results = classify(model, args.images, topk=topk, resize=resize, crop=crop)
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

    from ..teach.experiments import check_degradation_options, degradation
    try:                                         # --depths 20 alone, or 21: a mistake of the command line
        check_degradation_options(args.depths, args.steps, args.batch_size, args.lr, args.momentum,
                                  args.weight_decay, args.eval_every)
    except ValueError as e:
        raise UsageError(str(e).removeprefix("degradation: ")) from None
    out = args.out or os.path.join("runs", f"degradation-{args.data}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_folder(out, NotADirectoryError)
    result = degradation(data=args.data, depths=args.depths, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                         eval_every=args.eval_every, seed=args.seed, device=args.device, root=args.data_root,
                         download=not args.no_download, out=out, plot=not args.no_plot)
    print("\n" + result["summary"])
    written = [os.path.join(out, f"degradation.{ext}") for ext in ("csv", "json", "png")]
    print("wrote " + ", ".join(p for p in written if os.path.exists(p)))
    return 0


def cmd_summary(args):
    """Every layer of a model with its output shape and parameter count."""
    from ..teach.summary import summary
    from ..models import CifarResNet
    options = {} if args.num_classes is None else {"num_classes": args.num_classes}  # else the model's own
    model = get_model(args.model, in_channels=3 if args.input is None else args.input[0], **options)
    shape = args.input or ((3, 32, 32) if isinstance(model, CifarResNet) else (3, 224, 224))
    print(summary(model, tuple(shape), depth=args.depth))
    return 0
