"""SyncBatchNorm: batch normalisation over the global batch of all data-parallel processes.

With data parallelism (``minires/parallel/mpi.py``) each process normalises its own B images:
the statistics of a per-process batch, not of the W*B images one step averages over. For most
layers that does not matter (they treat each image alone), but batch norm mixes the images of
a batch. Synchronised, a batch norm computes its mean and variance over every process's images,
so W processes with B images each compute exactly what one process computes with W*B.

Nothing new is computed here. Batch norm already knows how to hold one part of a split batch
(minires/nn/norm.py, its module docstring): give it a ``group`` and its forward gathers every
part's (count, mean, var) and combines them (``combine_moments``: Chan's formula, float64),
and its backward sums the two per-channel gradient sums over the parts (``sum_over_parts``):

    dx_i = a * (g_i - (1/M) sum_j g_j - xhat_i (1/M) sum_j g_j xhat_j),   a = weight / sqrt(var + eps)

where the sums over j run over the global batch of M values. The parameter gradients stay
this process's shares: ``average_gradients`` after backward adds (and averages) them.
``WorldPart`` is that group for processes: one all-reduce gathers every process's values.
It costs one small all-reduce (W x (2C + 1) numbers) in forward and one (W x (2C + 1)) in
backward, per layer.

``convert_sync_batchnorm(model)`` gives every batch norm of a model the world as its group. The
layers stay what they were -- a Keras batch norm keeps Keras's running-statistics convention,
a PyTorch one PyTorch's -- and so do their parameters, buffers and checkpoint keys.
``SyncBatchNorm`` is a BatchNorm2d born synchronised, as PyTorch's ``nn.SyncBatchNorm``.

Every process must call forward (and backward) of every synchronised batch norm in the same
order, in the same mode: an all-reduce waits for all processes. Evaluation mode uses the
running statistics, which are equal on every process, and does not communicate.
"""
from .mpi import get_world
from ..backend import xp_of
from ..nn import BatchNorm2d


class WorldPart:
    """This process's part of the batch: the protocol of minires/nn/norm.py (``BatchNorm2d.group``)
    over the MPI world (``get_world()``, looked up at each call).

    ``gather(value)``: ``value`` is a tuple of numbers and arrays, the same shapes on every
    process. Each process writes its values, flattened, into its own row of a (W, k) array
    of zeros, and one all-reduce (a sum) fills in every row: each process gets every value,
    in rank order, given back in the dtypes it gave them. Every process keeps its own copy of
    the running statistics, equal everywhere: each updates it.
    """

    updates_running = True

    def gather(self, value):
        world = get_world()
        arrays = [v for v in value if hasattr(v, "dtype")]
        xp = xp_of(*arrays)
        sizes = [v.size if hasattr(v, "dtype") else 1 for v in value]
        rows = xp.zeros((world.size, sum(sizes)), dtype=xp.float64)
        rows[world.rank] = xp.concatenate([xp.asarray(v, dtype=xp.float64).reshape(-1) for v in value])
        world.allreduce(rows)
        return [self._unpack(row, value, sizes) for row in rows]

    @staticmethod
    def _unpack(row, like, sizes):
        """One row of the gathered array -> a tuple shaped and typed as ``like``."""
        out, start = [], 0
        for v, n in zip(like, sizes):
            part = row[start:start + n]
            out.append(part.reshape(v.shape).astype(v.dtype) if hasattr(v, "dtype") else type(v)(part[0].item()))
            start += n
        return tuple(out)

    def __repr__(self):
        return f"every process of the MPI world ({get_world().size})"


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d whose training statistics are over every process of ``get_world()``.

    Same parameters, buffers and state_dict keys as BatchNorm2d (a checkpoint loads into
    either); forward and backward are BatchNorm2d's, with the world as its ``group``.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, inplace=False):
        super().__init__(num_features, eps=eps, momentum=momentum, inplace=inplace)
        self.group = WorldPart()


def convert_sync_batchnorm(model):
    """Synchronise every batch norm of ``model`` (a BatchNorm2d or any subclass: the Keras one
    too) over the processes: each gets the world as its ``group`` and stays the layer it was,
    with its own convention for the running statistics, its Parameter objects (an optimizer
    built before still updates them) and its buffers. Returns ``model``."""
    for module in model.modules():
        if isinstance(module, BatchNorm2d):
            module.group = WorldPart()
    return model


__all__ = ["SyncBatchNorm", "WorldPart", "convert_sync_batchnorm"]
