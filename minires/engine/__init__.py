"""The fast path: the textbook's numbers (minires/nn/) with less memory traffic.

One file per layer it speeds up, each trick a named function whose docstring derives it and
names its plain twin in nn/:

    memory.py      channel-major activations and reused workspaces (the two tricks the others share)
    im2col.py      im2col_into, col2im_add: the columns without a padded copy or a loop
    conv.py        Conv2d: columns a chunk at a time, 1x1 without im2col, the flipped-kernel backward
    norm.py        BatchNorm2d: row-wise statistics on the channel-major matrix
    activation.py  ReLU: in place, keeping y instead of a mask
    pool.py        MaxPool2d without columns; AdaptiveAvgPool2d's gradient channel-major
    padding.py     ZeroPad2d and "same" padding, the padded copy channel-major

nn/ never imports this package. Importing it (``import minires`` does) sets each layer class's
``fast`` attribute (the protocol nn/module.py defines); a layer's forward and backward then hand
themselves to it in one line, and ``with minires.nn.plain():`` turns every one of them off.
"""
from . import activation, conv, norm, padding, pool
from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, MaxPool2d, ReLU
from ..nn.padding import ZeroPad2d
from ..nn.switches import FastPath

# Each layer class's fast path (``Module.fast``; subclasses inherit it): what its forward and
# backward hand the layer to, off the plain path. None: that half has no fast twin.
Conv2d.fast = FastPath(conv.forward, conv.backward)
BatchNorm2d.fast = FastPath(norm.forward, norm.backward)
ReLU.fast = FastPath(activation.forward, activation.backward)
MaxPool2d.fast = FastPath(pool.forward, pool.backward)
AdaptiveAvgPool2d.fast = FastPath(None, pool.avgpool_backward)
ZeroPad2d.fast = FastPath(padding.forward, None)
