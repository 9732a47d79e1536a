"""The ``minires`` command (also ``python -m minires``)."""
import argparse
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


def build_parser():
    parser = argparse.ArgumentParser(prog="minires", description="ResNet from first principles in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    except (ValueError, TypeError, KeyError, RuntimeError, OSError) as e:
        print(f"minires {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
