"""Transfer learning: a trained network's trunk, frozen, under a new head for new classes.

The tutorial's builders take ``include_top``: with it False the network stops at its last feature
map, the *trunk*, so that its reader can load weights trained on ImageNet and put a head of their
own on top, for their own classes. In minires that is three visible steps:

    model = with_new_head(trained, num_classes=5)        # a new classifier; the rest frozen
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)  # SGD skips the frozen parameters
    for x, y in batches: ...                             # the usual loop: only the head learns

Frozen means ``Module.freeze()`` (minires/nn/module.py): each trunk parameter has
``requires_grad = False``, which ``SGD.step`` skips (minires/train/optim.py), and the trunk stays
in eval mode through ``model.train()``. Eval mode matters for batch norm: in training mode it
would normalise each batch with that batch's statistics, not with the running ones it learnt, and
update those, so a "frozen" trunk would still change and would give the head other features in
training than at test time. The trunk's backward still runs (its layers add into ``.grad`` as
always; the loss's gradient must pass through every layer that has one, and minires has no
autograd to prune); where the trunk comes first, ``trunk_features`` computes its features once
instead, and the head can be trained on them alone.
"""
from ..backend import xp_of
from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Flatten, Linear, Module, Sequential, no_grad


def with_new_head(model, num_classes, *, freeze=True):
    """A network for ``num_classes`` new classes from a trained one: x (N, C, H, W) -> logits (N, num_classes).

    A model with a classifier ``fc`` (``ResNet``, the CIFAR nets) gets a new one,
    ``Linear(fc.in_features, num_classes)`` freshly initialised, and is returned, changed in place.
    A model built with ``include_top=False``, which returns its last feature map (N, C', h, w), is
    returned inside ``Sequential(model, AdaptiveAvgPool2d((1, 1)), Flatten(), Linear(C', num_classes))``:
    the head a Keras user puts on ``include_top=False``. With ``freeze`` (the default) everything but
    the new ``Linear`` is frozen (``Module.freeze``); ``freeze=False`` fine-tunes the whole network.

        >>> model = with_new_head(resnet20(num_classes=5, in_channels=1), num_classes=3)
        >>> model(np.zeros((2, 1, 8, 8), np.float32)).shape
        (2, 3)
        >>> [name for name, p in model.named_parameters() if p.requires_grad]
        ['fc.weight', 'fc.bias']
    """
    if not isinstance(model, Module):
        raise TypeError(f"with_new_head expects a minires model (a Module), got {type(model).__name__}")
    if hasattr(model, "softmax"):
        raise ValueError(f"{model._describe()} ends in a softmax (probabilities): build it with "
                         "classifier_activation=None, so that the new head gives logits for the loss")
    if isinstance(getattr(model, "fc", None), Linear):
        for name, child in model.named_children():
            if freeze and name != "fc":
                child.freeze()          # the model itself stays unfrozen: train() reaches the new fc
        model.fc = Linear(model.fc.in_features, num_classes).train(model.training)
        return model
    if getattr(model, "include_top", True) or getattr(model, "data_format", "channels_first") != "channels_first":
        raise ValueError(f"{model._describe()}: with_new_head needs a model with a Linear classifier `fc`, or one "
                         "built with include_top=False (and channels_first) that returns its feature map")
    if freeze:
        model.freeze()
    return Sequential(model, AdaptiveAvgPool2d((1, 1)), Flatten(), Linear(feature_channels(model), num_classes))


def feature_channels(trunk):
    """The channels C' of the feature map (N, C', h, w) a model built with ``include_top=False`` returns:
    those of its last batch norm (every ResNet, v1 or v2, ends its trunk with one).

        >>> feature_channels(resnet50(include_top=False))
        2048
    """
    norms = [m for m in trunk.modules() if isinstance(m, BatchNorm2d)]
    if not norms:
        raise ValueError(f"{trunk._describe()} has no batch norm to read its output channels from")
    return norms[-1].num_features


def trunk_features(trunk, images, batch_size=256):
    """images (N, C, H, W) -> what ``trunk`` returns for them, in eval mode and without keeping
    anything for a backward: the features once, so that a new head can be trained on them alone.
    ``trunk`` is left in the mode it was in.

        >>> trunk_features(resnet18(include_top=False), np.zeros((2, 3, 64, 64), np.float32)).shape
        (2, 512, 2, 2)
    """
    was_training, parts = trunk.training, []
    trunk.eval()
    try:
        with no_grad():
            for i in range(0, len(images), batch_size):
                parts.append(trunk(images[i:i + batch_size]))
    finally:
        trunk.train(was_training)
    return xp_of(parts[0]).concatenate(parts)
