"""The fast path of padding: the padded copy stored channel-major, like every activation.

A padded copy is made anyway (plain twin: minires/nn/padding.py:pad2d); storing it as a
(C, N, H, W) block (``memory.py``) lets the convolution or pooling that reads it take its
columns without a transpose. The backward of padding is a crop, a view (nn/padding.py:crop2d),
the same on both paths: ZeroPad2d's backward has no fast twin.
"""
from .memory import channel_major
from ..backend import xp_of
from ..nn.padding import same_pads


def pad2d_channel_major(x, pads, value=0.0):
    """``pad2d``'s numbers, stored channel-major. Plain twin: minires/nn/padding.py:pad2d."""
    left, right, top, bottom = pads
    xp = xp_of(x)
    N, C, H, W = x.shape
    out = xp.full((C, N, top + H + bottom, left + W + right), value, dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = channel_major(x)
    return channel_major(out)


def pad_same_channel_major(layer, x, value):
    """The forward half of "same" for a Conv2d or MaxPool2d, channel-major (remembered on the
    layer for ``crop_same``). Plain twin: minires/nn/padding.py:pad_same."""
    pads = same_pads(x.shape[2], x.shape[3], layer.kernel_size, layer.stride)
    vars(layer)["_same_pads"] = pads
    return pad2d_channel_major(x, pads, value) if any(pads) else x


def forward(layer, x):
    """ZeroPad2d's forward: the padded copy channel-major. Plain twin: minires/nn/padding.py:ZeroPad2d.forward."""
    layer.save_for_backward(x.shape)
    return pad2d_channel_major(x, layer.padding, 0.0)

