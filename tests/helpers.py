"""Small helpers shared by the tests (import them with `from helpers import ...`)."""
import signal
import time

import numpy as np

from minires.backend import to_device


def away_from_kinks(rng, shape, gap=0.05):
    """Standard-normal values pushed at least ``gap`` away from 0 (ReLU's kink) and, being
    continuous draws, free of ties (max-pool's kink); float64."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + gap, x - gap)


def on(device, a):
    return to_device(a, device)


def forward_backward(model, x, upstream, net=None):
    """One forward and backward of ``net`` (default: ``model``) from zeroed gradients ->
    (output, input gradient, {name: parameter gradient}, {name: buffer}), copies of each."""
    net = net or model
    model.zero_grad()
    y = net(x.copy())
    dx = net.backward(upstream)
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}
    buffers = {k: np.array(b, copy=True) for k, b in model.named_buffers()}
    return y, dx, grads, buffers


def sigterm_when_ready(proc, ready, timeout=120):
    """Wait (at most ``timeout`` s) until the file ``ready`` exists or ``proc`` has ended, send it
    SIGTERM, and return its (stdout, stderr); ``proc`` is killed whatever happens."""
    try:
        deadline = time.time() + timeout
        while not ready.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=timeout)
    finally:
        proc.kill()
