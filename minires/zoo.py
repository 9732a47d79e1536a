"""Every network by name: the PyTorch flavour (``minires.models.MODELS``) and the Keras flavour
(``minires.keras.KERAS_MODELS``).

    >>> from minires.zoo import get_model
    >>> model = get_model("resnet20", in_channels=1)
"""
from .keras import KERAS_MODELS
from .models import MODELS


def get_model(name, **kwargs):
    """Build a model by name (``MODELS`` lists them, ``KERAS_MODELS`` the Keras-flavoured ones), e.g.
    ``get_model('resnet20', in_channels=1)``. ``kwargs`` go to the builder: ``help(MODELS['resnet20'])``
    lists the ones each takes (num_classes, in_channels ...); one it does not take is a TypeError."""
    if name in KERAS_MODELS:
        return KERAS_MODELS[name](**kwargs)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)} "
                         f"(Keras-flavoured: {', '.join(KERAS_MODELS)})")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "KERAS_MODELS", "get_model"]
