"""Parallelism: more than one worker on one batch.

    threads.py   ThreadParallel: replicas of a model on the threads of one process
    blas.py      OpenBLAS's thread count, set for a block
    mpi.py       processes under mpiexec: the world, all-reduce, broadcast, gradient averaging
    sampler.py   DistributedSampler: each process's share of an epoch
    syncbn.py    SyncBatchNorm: batch norm statistics over every process's images

Batch norm, the one layer that mixes the images of a batch, combines its statistics over the
parts through the protocol of ``minires/nn/norm.py`` (``BatchNorm2d.group``); these modules
implement it, for threads and for processes.
"""
from .syncbn import SyncBatchNorm, convert_sync_batchnorm
from .threads import ThreadParallel

__all__ = ["ThreadParallel", "SyncBatchNorm", "convert_sync_batchnorm"]
