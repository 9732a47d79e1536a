"""The workloads, each built twice: once in minires, once in PyTorch, on identical shapes.

A case is a function ``build(framework, smoke, device) -> (steps, images, flops)``:
- ``steps``: {"forward": fn} or {"forward": fn, "forward+backward": fn} or {"train step": fn},
  each fn doing one unit of work and returning when it is done (on a GPU, where work is
  queued, each fn waits for the device: ``_synchronized``);
- ``images``: how many images one call processes (for images/s);
- ``flops``: {step name: floating-point operations of one call}, counted from the shapes
  (multiply-add = 2), the same for both frameworks, for the fraction of the matmul ceiling.
``smoke=True`` shrinks every shape so the whole suite runs in seconds (used by the tests).
``device="cuda"`` runs minires on CuPy and PyTorch on CUDA (cuDNN) instead of the CPU.
"""
import numpy as np

SEED = 0


def conv_flops(N, C, O, OH, OW, KH, KW, groups=1):
    """Forward FLOPs of a convolution: every output value is a C/groups*KH*KW dot product."""
    return 2 * N * O * OH * OW * (C // groups) * KH * KW


# ----- single convolutions -----

CONVS = {
    # name: (N, C, H, W, O, kernel, stride, padding), the shapes of the issue
    "conv3x3": (128, 64, 32, 32, 64, 3, 1, 1),
    "conv1x1": (16, 256, 56, 56, 64, 1, 1, 0),
    "stem7x7": (16, 3, 224, 224, 64, 7, 2, 3),
}
SMOKE_CONVS = {
    "conv3x3": (2, 4, 8, 8, 4, 3, 1, 1),
    "conv1x1": (2, 8, 6, 6, 4, 1, 1, 0),
    "stem7x7": (2, 3, 16, 16, 4, 7, 2, 3),
}


def _synchronized(steps, framework, device):
    """On a GPU a call returns once its work is queued: make each step wait until it is done."""
    if device == "cpu":
        return steps
    if framework == "minires":
        import cupy
        sync = cupy.cuda.get_current_stream().synchronize
    else:
        import torch
        sync = torch.cuda.synchronize

    def waiting(fn):
        def step():
            fn()
            sync()
        return step
    return {name: waiting(fn) for name, fn in steps.items()}


def build_conv(name, framework, smoke, device="cpu"):
    N, C, H, W, O, k, s, p = (SMOKE_CONVS if smoke else CONVS)[name]
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    fwd = conv_flops(N, C, O, OH, OW, k, k)
    flops = {"forward": fwd, "forward+backward": 3 * fwd}   # backward: dx and dw, each as costly
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    g = rng.standard_normal((N, O, OH, OW), dtype=np.float32)
    if framework == "minires":
        from minires import nn, no_grad, to_device
        conv = nn.Conv2d(C, O, k, stride=s, padding=p, bias=False).to(device)
        x, g = to_device(x, device), to_device(g, device)

        def forward():
            with no_grad():
                conv(x)

        def forward_backward():
            conv(x)
            conv.backward(g)
    else:
        import torch
        conv = torch.nn.Conv2d(C, O, k, stride=s, padding=p, bias=False).to(device)
        xt, gt = torch.from_numpy(x).to(device), torch.from_numpy(g).to(device)
        xt_grad = xt.clone().requires_grad_(True)

        def forward():
            with torch.no_grad():
                conv(xt)

        def forward_backward():
            conv(xt_grad).backward(gt)
    steps = {"forward": forward, "forward+backward": forward_backward}
    return _synchronized(steps, framework, device), N, flops


# ----- whole networks -----

def _count_minires_flops(model, x):
    """Forward FLOPs of a minires network: run it once and add up every Conv2d and Linear."""
    from minires import nn, no_grad
    total = 0
    originals = {}

    def counting(cls, count):
        original = cls.forward

        def forward(self, inp):
            nonlocal total
            out = original(self, inp)
            total += count(self, inp, out)
            return out
        originals[cls] = original
        cls.forward = forward

    counting(nn.Conv2d, lambda m, i, o: conv_flops(o.shape[0], m.in_channels, m.out_channels, o.shape[2],
                                                   o.shape[3], *m.kernel_size, m.groups))
    counting(nn.Linear, lambda m, i, o: 2 * i.shape[0] * m.in_features * m.out_features)
    try:
        with no_grad():
            model.eval()(x)
    finally:
        for cls, original in originals.items():
            cls.forward = original
        model.train()
    return total


NETS = {
    # name: (model, batch, image size, classes, mode)
    "resnet20 train": ("resnet20", 128, 32, 10, "train"),
    "resnet20 eval": ("resnet20", 128, 32, 10, "eval"),
    "resnet56 train": ("resnet56", 128, 32, 10, "train"),
    "resnet110 train": ("resnet110", 128, 32, 10, "train"),
    "resnet50 eval": ("resnet50", 16, 224, 1000, "eval"),
    "resnet50 train": ("resnet50", 16, 224, 1000, "train"),
    "resnet50 train b64": ("resnet50", 64, 224, 1000, "train"),   # the GPU comparison's batch
    # how the cost grows with the batch (with depth: resnet20/56/110 train above), --growth
    "resnet20 train b32": ("resnet20", 32, 32, 10, "train"),
    "resnet20 train b64": ("resnet20", 64, 32, 10, "train"),
    "resnet20 train b256": ("resnet20", 256, 32, 10, "train"),
}
SMOKE_NETS = {
    "resnet20 train": ("resnet20", 4, 8, 10, "train"),
    "resnet20 eval": ("resnet20", 4, 8, 10, "eval"),
    "resnet56 train": ("resnet56", 2, 8, 10, "train"),
    "resnet110 train": ("resnet110", 2, 8, 10, "train"),
    "resnet50 eval": ("resnet50", 2, 32, 10, "eval"),
    "resnet50 train": ("resnet50", 2, 32, 10, "train"),
    "resnet50 train b64": ("resnet50", 3, 32, 10, "train"),
    "resnet20 train b32": ("resnet20", 2, 8, 10, "train"),
    "resnet20 train b64": ("resnet20", 3, 8, 10, "train"),
    "resnet20 train b256": ("resnet20", 5, 8, 10, "train"),
}
GROWTH = ["resnet20 train b32", "resnet20 train b64", "resnet20 train", "resnet20 train b256",
          "resnet56 train", "resnet110 train"]


def build_net(name, framework, smoke, device="cpu"):
    arch, N, size, classes, mode = (SMOKE_NETS if smoke else NETS)[name]
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((N, 3, size, size), dtype=np.float32)
    target = rng.integers(0, classes, N)
    step_name = "train step" if mode == "train" else "forward"
    sgd = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)
    if framework == "minires":
        from minires import models, nn, no_grad, parallel, to_device
        from minires.train.optim import SGD
        model = getattr(models, arch)(num_classes=classes).to(device)
        x, target = to_device(x, device), to_device(target, device)
        forward_flops = _count_minires_flops(model, x)
        criterion = nn.CrossEntropyLoss()
        optimizer = SGD(model.parameters(), **sgd)
        # as `minires train` runs it: on every core, the batch split over replicas on threads
        # where the parts are large enough (minires/parallel/threads.py; MINIRES_NUM_THREADS=1: alone)
        net = parallel.ThreadParallel(model)

        def train_step():
            optimizer.zero_grad()
            criterion(net(x), target)
            net.backward(criterion.backward())
            optimizer.step()

        def eval_forward():
            with no_grad():
                net(x)
    else:
        import sys
        import os
        import torch
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
        import torch_reference
        model = getattr(torch_reference, arch)(num_classes=classes).to(device)
        forward_flops = None                       # the same work: run.py uses minires's count
        xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(target).to(device)
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), **sgd)

        def train_step():
            optimizer.zero_grad()
            criterion(model(xt), tt).backward()
            optimizer.step()

        def eval_forward():
            with torch.no_grad():
                model(xt)
    if mode == "eval":
        model.eval()
        fn, flops = eval_forward, forward_flops
    else:
        model.train()
        fn, flops = train_step, None if forward_flops is None else 3 * forward_flops
    return _synchronized({step_name: fn}, framework, device), N, {step_name: flops}


CASES = list(CONVS) + list(NETS)
# what runs without --cases: on the CPU, ResNet-50 at batch 64 would take minutes per step;
# the batch-growth cases run with --growth
DEFAULT_CASES = {"cpu": [c for c in CASES if c != "resnet50 train b64" and not c.startswith("resnet20 train b")],
                 "cuda": [c for c in CASES if not c.startswith("resnet20 train b")]}


def build(name, framework, smoke=False, device="cpu"):
    if name in CONVS:
        return build_conv(name, framework, smoke, device)
    if name in NETS:
        return build_net(name, framework, smoke, device)
    raise ValueError(f"unknown case {name!r}; the cases are: {', '.join(CASES)}")
