"""The ``minires`` command (also ``python -m minires``)."""
import argparse
import os
import sys

import numpy as np


def cmd_gradcheck(args):
    """Gradient-check every layer (and a small network) in float64 and print the tables."""
    from . import nn
    from .backend import to_device
    from .gradcheck import check_function, check_module

    rng = np.random.default_rng(args.seed)
    nn.manual_seed(args.seed)

    def data(*shape):
        x = rng.standard_normal(shape)
        return to_device(np.where(x >= 0, x + 0.05, x - 0.05), args.device)  # away from ReLU's kink

    bn_eval = nn.BatchNorm2d(4)
    bn_eval.running_mean[...] = rng.normal(0, 0.1, 4)
    bn_eval.running_var[...] = rng.uniform(0.5, 1.5, 4)
    cases = [
        ("Conv2d 3x3, stride 2, padding 1", nn.Conv2d(4, 6, 3, stride=2, padding=1), data(2, 4, 7, 6)),
        ("Conv2d 3x3, groups 2", nn.Conv2d(4, 8, 3, padding=1, groups=2), data(2, 4, 5, 5)),
        ("Conv2d 7x7, stride 2, padding 3", nn.Conv2d(3, 4, 7, stride=2, padding=3, bias=False), data(2, 3, 9, 8)),
        ("Conv2d 1x1", nn.Conv2d(4, 6, 1, bias=False), data(2, 4, 5, 5)),
        ("BatchNorm2d, train (batch statistics)", nn.BatchNorm2d(4), data(3, 4, 3, 3)),
        ("BatchNorm2d, eval (running statistics)", bn_eval.eval(), data(3, 4, 3, 3)),
        ("ReLU", nn.ReLU(), data(2, 4, 3, 3)),
        ("MaxPool2d 3x3, stride 2, padding 1", nn.MaxPool2d(3, 2, 1), data(2, 3, 7, 6)),
        ("AdaptiveAvgPool2d (global average)", nn.AdaptiveAvgPool2d((1, 1)), data(2, 4, 3, 5)),
        ("Linear", nn.Linear(6, 5), data(4, 6)),
        ("Dropout p=0.3 (the same mask on every re-run)", nn.Dropout(0.3), data(3, 4, 3, 3)),
        ("Sequential conv-bn-relu-pool-fc", nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 3)), data(3, 3, 6, 6)),
    ]
    failures = 0
    for title, module, x in cases:
        result = check_module(module.to(args.device), x, seed=args.seed)
        result.name = title
        print(result, end="\n\n")
        failures += not result.ok
    loss = nn.CrossEntropyLoss()
    target = to_device(rng.integers(0, 5, 4), args.device)
    result = check_function(lambda z: loss.forward(z, target), loss.backward, data(4, 5), names=["logits"])
    result.name = "CrossEntropyLoss"
    print(result, end="\n\n")
    failures += not result.ok
    total = len(cases) + 1
    print(f"{total - failures} of {total} checks passed" + ("" if not failures else f", {failures} FAILED"))
    return 0 if not failures else 1


TRAIN_OPTIONS = ("model", "data", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                 "warmup_epochs", "device", "dtype", "seed", "augment")


def cmd_train(args):
    """Train a model; with no options, ResNet-20 on the bundled digits on the CPU."""
    import time

    from .train import fit
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
    cfg_name = f"{given.get('model', 'resnet20')}-{given.get('data', 'digits')}"
    out = args.out or os.path.join("runs", f"{cfg_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if os.path.exists(os.path.join(out, "last.npz")):
        raise ValueError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
    fit(out=out, progress=not args.no_progress, plot=not args.no_plot, root=args.data_root,
        download=not args.no_download, **given)
    return 0


def cmd_evaluate(args):
    """Test loss, accuracy and confusion matrix of a saved checkpoint."""
    from .train import Run, evaluate, make_config
    from .viz import confusion_matrix, format_confusion, plot_confusion
    from .weights import load_checkpoint
    if not os.path.exists(args.checkpoint):
        raise FileNotFoundError(f"no checkpoint at {args.checkpoint}")
    _, meta = load_checkpoint(args.checkpoint)
    if "config" not in meta:
        raise ValueError(f"{args.checkpoint} is not a minires training checkpoint (no saved configuration)")
    saved = meta["config"]
    cfg = make_config(**dict(saved, model=args.model or saved["model"], data=args.data or saved["data"],
                             device=args.device or saved["device"]))
    if args.model and args.model != saved["model"]:
        raise ValueError(f"{args.checkpoint} holds a {saved['model']}, not a {args.model}")
    run = Run(cfg, root=args.data_root, download=not args.no_download)
    run.load(args.checkpoint)
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
    """Top-k classes of each image with published (torchvision) weights."""
    from .predict import classify, default_resize, load_pretrained
    for image in args.images:
        if not os.path.exists(image):
            raise FileNotFoundError(f"no image at {image}")
    model = load_pretrained(args.weights, args.model, device=args.device)
    resize = args.resize or default_resize(args.weights)
    results = classify(model, args.images, topk=args.topk, resize=resize, crop=args.crop)
    for image, top in zip(args.images, results):
        print(f"{image}:")
        for rank, (index, name, p) in enumerate(top, 1):
            print(f"  {rank}. {p:7.2%}  {name}  ({index})")
    return 0


def cmd_experiment_degradation(args):
    """Plain vs residual nets at two or more depths, trained the same way: the paper's Figure 6, small."""
    import time

    from .experiments import degradation
    out = args.out or os.path.join("runs", f"degradation-{args.data}-{time.strftime('%Y%m%d-%H%M%S')}")
    result = degradation(data=args.data, depths=args.depths, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                         eval_every=args.eval_every, seed=args.seed, device=args.device, root=args.data_root,
                         download=not args.no_download, out=out, plot=not args.no_plot)
    print()
    print(result["summary"])
    written = [os.path.join(out, f"degradation.{ext}") for ext in ("csv", "json", "png")]
    print("wrote " + ", ".join(p for p in written if os.path.exists(p)))
    return 0


def cmd_summary(args):
    from . import summary
    from .models import get_model
    model = get_model(args.model, num_classes=args.num_classes, in_channels=args.input[0])
    print(summary(model, tuple(args.input), depth=args.depth))
    return 0


def build_parser():
    from .data import DATASETS
    from .models import KERAS_MODELS, MODELS
    parser = argparse.ArgumentParser(prog="minires", description="ResNet from first principles in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a model (default: ResNet-20 on the bundled 8x8 digits, CPU)",
                       description="Train a model. Every option has a default; a run folder gets config.json, "
                                   "metrics.csv, curves.png and the checkpoints last.npz and best.npz.")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default resnet20)")
    p.add_argument("--data", help=f"one of: {', '.join(DATASETS)} (default digits)")
    p.add_argument("--epochs", type=int, help="default 30")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.1)")
    p.add_argument("--momentum", type=float, help="default 0.9")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument("--schedule", choices=["cosine", "step", "constant"], help="default cosine; step: /10 at 50%% and 75%%")
    p.add_argument("--warmup-epochs", type=int, help="linear warm-up (default 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], help="default float32")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop and flip (default: on for CIFAR-10, off for digits and MNIST)")
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue the run saved in RUN_DIR (or --out) exactly where it stopped")
    p.add_argument("--data-root", help="where data sets are kept (default $MINIRES_DATA or ~/.cache/minires)")
    p.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true", help="no curves.png")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test loss, accuracy and confusion matrix of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a last.npz or best.npz from `minires train`")
    p.add_argument("--model", help="check that the checkpoint holds this model")
    p.add_argument("--data", help="evaluate on another data set of the same shape")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--data-root")
    p.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    p.add_argument("--out", help="folder for confusion.png (default: the checkpoint's)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images with published weights (a torchvision .pth, no torch)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--weights", required=True, help="a .pth (torch.save), .safetensors or .npz state_dict, or a "
                   "Keras .h5 / .weights.h5 (preprocessing then Keras's, chosen from the file)")
    p.add_argument("--model", choices=list(MODELS) + list(KERAS_MODELS), metavar="MODEL",
                   help="default: from the file name, e.g. resnet50-0676ba61.pth -> resnet50 (Keras files: "
                   "from their layer names)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--resize", type=int, help="shorter side before the crop (default 256; 232 for V2 weights)")
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("summary", help="every layer of a model with its output shape and parameters")
    p.add_argument("--model", default="resnet50", choices=list(MODELS), metavar="MODEL")
    p.add_argument("--input", type=int, nargs=3, default=[3, 224, 224], metavar=("C", "H", "W"))
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--depth", type=int, default=None, help="1: stages, 2: blocks, ... (default: all)")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("experiment", help="reproduce an experiment of the paper, small (degradation)",
                       description="Experiments from He et al. (2015) at laptop scale.")
    experiments = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    e = experiments.add_parser(
        "degradation", help="plain vs residual nets at two depths: training error against iterations",
        description="Train a plain and a residual CIFAR-style net (6n+2 layers) at each depth with the same "
                    "seed, batches and settings, and compare their training errors (the paper's Figures 1 and 6). "
                    "Writes degradation.png, degradation.csv (per step) and degradation.json (final numbers).")
    e.add_argument("--data", default="digits", choices=list(DATASETS), help="default digits (offline)")
    e.add_argument("--depths", type=int, nargs="+", default=[20, 56], metavar="D",
                   help="layers, each 6n+2: 8, 14, 20, 32, 44, 56, 110 ... (default 20 56)")
    e.add_argument("--steps", type=int, default=600, help="SGD steps per net (default 600)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    e.add_argument("--momentum", type=float, default=0.9)
    e.add_argument("--weight-decay", type=float, default=0.0, help="default 0: only how well the nets fit")
    e.add_argument("--schedule", choices=["constant", "step", "cosine"], default="constant")
    e.add_argument("--eval-every", type=int, help="measure the whole training and test sets every N steps "
                                                  "(default: only after the last step)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    e.add_argument("--out", help="output folder (default runs/degradation-DATA-TIME)")
    e.add_argument("--data-root", help="where data sets are kept (default $MINIRES_DATA or ~/.cache/minires)")
    e.add_argument("--no-download", action="store_true", help="fail if the data set is not already there")
    e.add_argument("--no-plot", action="store_true", help="no degradation.png")
    e.set_defaults(func=cmd_experiment_degradation)

    p = sub.add_parser("gradcheck", help="gradient-check every layer in float64 and print the tables")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, RuntimeError, OSError, ArithmeticError, ImportError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError would add quotes
        print(f"minires {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
