"""Each process's share of an epoch: ``DistributedSampler``, with torch.utils.data.DistributedSampler's rules.

    sampler = DistributedSampler(len(dataset), world.size, world.rank, seed=0)
    mine = sampler.split(order)       # this epoch's permutation -> this rank's indices

Used by a data-parallel training run (``minires/train/data_parallel.py``) to give each rank
its shard of the permutation a single process would use; the world is ``minires/parallel/mpi.py``'s.
"""
import numpy as np

from .mpi import get_world


class DistributedSampler:
    """This rank's share of a data set of ``n`` items, with torch.utils.data.DistributedSampler's rules.

    Every epoch the same seeded permutation on every rank (``default_rng([seed, epoch])``, the
    order a single-process minires run uses), made divisible by the world size -- padded with
    its own first items, or with ``drop_last`` cut -- and dealt out like cards: rank r takes
    positions r, r + W, r + 2W ... So every rank takes the same number of items, and the
    first B items of every rank together are the first W*B of the permutation: the global
    batch is the single-process batch of W*B.
    """

    def __init__(self, n, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        world = get_world() if num_replicas is None or rank is None else None
        self.num_replicas = world.size if num_replicas is None else int(num_replicas)
        self.rank = world.rank if rank is None else int(rank)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in 0..{self.num_replicas - 1}, got {self.rank}")
        if n < 1:
            raise ValueError(f"DistributedSampler: the data set is empty (n = {n})")
        self.n, self.shuffle, self.seed, self.drop_last, self.epoch = int(n), shuffle, seed, drop_last, 0
        W = self.num_replicas
        self.num_samples = self.n // W if drop_last else -(-self.n // W)   # floor or ceil
        self.total_size = self.num_samples * W

    def set_epoch(self, epoch):
        self.epoch = epoch

    def split(self, order):
        """A permutation of the n items -> this rank's indices (padded or cut first)."""
        order = np.asarray(order)
        if self.total_size > len(order):                  # pad with the first items, repeated
            order = np.concatenate([order, np.resize(order, self.total_size - len(order))])
        return order[:self.total_size][self.rank::self.num_replicas]

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle \
            else np.arange(self.n)
        return iter(self.split(order).tolist())

    def __len__(self):
        return self.num_samples

