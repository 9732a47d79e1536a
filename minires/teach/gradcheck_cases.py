"""What ``minires gradcheck`` checks: every layer type, the residual blocks, a small network and the loss, in float64.

    for result in run_gradchecks(seed=0):
        print(result)              # one table per layer; result.ok if every error is small

Each input is drawn away from ReLU's kink (a central difference across the kink is wrong by
design), batch norm is checked in both modes, and Dropout with the same mask on every re-run.
To gradient-check a new layer from the command line, add a case to :func:`gradcheck_cases`.
"""
import numpy as np

from .. import nn
from ..backend import to_device
from ..models.blocks import BasicBlock, Bottleneck, projection
from ..nn.pool import MaxPool2dSame
from .gradcheck import check_function, check_module


def gradcheck_cases(seed=0, device="cpu"):
    """The checks of ``minires gradcheck``, in order: a list of ``(title, check)``, where ``check()``
    runs one gradient check and returns its :class:`~minires.teach.gradcheck.GradcheckResult`.

    Inputs are drawn from ``numpy.random.default_rng(seed)``, weights after ``nn.manual_seed(seed)``.
    """
    rng = np.random.default_rng(seed)
    nn.manual_seed(seed)

    def data(*shape):
        x = rng.standard_normal(shape)
        return to_device(np.where(x >= 0, x + 0.05, x - 0.05), device)  # away from ReLU's kink

    bn_eval = nn.BatchNorm2d(4)
    bn_eval.running_mean[...] = rng.normal(0, 0.1, 4)
    bn_eval.running_var[...] = rng.uniform(0.5, 1.5, 4)
    layers = [
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
        ("Conv2d 3x3, stride 2, padding='same' (uneven: 0 above, 1 below)",
         nn.Conv2d(3, 4, 3, stride=2, padding="same"), data(2, 3, 6, 7)),
        ("MaxPool2d 3x3, stride 2, padding='same' (-inf)", MaxPool2dSame(3, 2), data(2, 3, 6, 7)),
        ("ZeroPad2d (left 1, right 2, top 0, bottom 1)", nn.ZeroPad2d((1, 2, 0, 1)), data(2, 3, 4, 5)),
        ("BasicBlock, identity shortcut", BasicBlock(4, 4), data(2, 4, 5, 5)),
        ("BasicBlock, stride 2, projection shortcut (1x1 conv, batch norm)",
         BasicBlock(4, 6, stride=2, downsample=projection(4, 6, 2)), data(2, 4, 5, 6)),
        ("Bottleneck, stride 2, projection shortcut", Bottleneck(4, 2, stride=2, downsample=projection(4, 8, 2)),
         data(2, 4, 5, 6)),
        ("Sequential conv-bn-relu-pool-fc", nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 3)), data(3, 3, 6, 6)),
    ]
    cases = [(title, lambda module=module, x=x: check_module(module.to(device), x, seed=seed))
             for title, module, x in layers]

    def cross_entropy():   # its target and logits are drawn when it runs, after the layers' checks
        loss = nn.CrossEntropyLoss()
        target = to_device(rng.integers(0, 5, 4), device)
        return check_function(lambda z: loss.forward(z, target), loss.backward, data(4, 5), names=["logits"])

    return cases + [("CrossEntropyLoss", cross_entropy)]


def run_gradchecks(seed=0, device="cpu"):
    """Run :func:`gradcheck_cases` one by one: yields each GradcheckResult, named by its title."""
    for title, check in gradcheck_cases(seed, device):
        result = check()
        result.name = title
        yield result
