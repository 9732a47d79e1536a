"""CrossEntropyLoss: softmax and negative log-likelihood in one numerically stable step."""
from .module import Module
from ..backend import device_of, xp_of


def log_softmax(logits):
    """(N, K) -> (N, K) log-probabilities, stable: subtracting the row max changes nothing
    mathematically but keeps exp() from overflowing (the log-sum-exp trick)."""
    xp = xp_of(logits)
    z = logits - logits.max(axis=1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))


def softmax(logits):
    """(N, K) -> (N, K) probabilities, rows sum to 1."""
    return xp_of(logits).exp(log_softmax(logits))


class CrossEntropyLoss(Module):
    """loss = mean over the batch of -log softmax(logits)[n, target[n]].

    ``forward(logits (N, K), target (N,) integer classes)`` returns a 0-d array;
    ``backward(grad=1.0)`` returns d loss / d logits = (softmax(logits) - onehot(target)) / N.
    """

    def forward(self, logits, target):
        self.check_input(logits, ndim=2, what="logits (N, K)")
        xp = xp_of(logits)
        N, K = logits.shape
        if not hasattr(target, "dtype") or target.dtype.kind not in "iu":
            raise TypeError(f"{self._describe()}: target must be an integer array of class indices, "
                            f"got {getattr(target, 'dtype', type(target).__name__)}")
        if target.shape != (N,):
            raise ValueError(f"{self._describe()}: target must have shape ({N},) to match logits "
                             f"{tuple(logits.shape)}, got {tuple(target.shape)}")
        if device_of(target) != device_of(logits):
            raise ValueError(f"{self._describe()}: target is on '{device_of(target)}' but logits are on "
                             f"'{device_of(logits)}'")
        if N and (int(target.min()) < 0 or int(target.max()) >= K):
            raise ValueError(f"{self._describe()}: target classes must lie in [0, {K}), "
                             f"got values from {int(target.min())} to {int(target.max())}")
        logp = log_softmax(logits)
        loss = -logp[xp.arange(N), target].mean()
        self.save_for_backward(logp, target)
        return loss

    def backward(self, grad=1.0):
        """-> d loss / d logits (N, K), scaled by ``grad``."""
        logp, target = self.saved
        xp = xp_of(logp)
        N = logp.shape[0]
        dlogits = xp.exp(logp)                    # softmax
        dlogits[xp.arange(N), target] -= 1.0      # minus the one-hot target
        return dlogits * (grad / N)
