"""Stochastic gradient descent and learning-rate schedules.

The optimizer only needs objects with ``.data`` and ``.grad`` arrays (NumPy or CuPy, same
shape and dtype), so it works with ``minires.nn.Parameter`` and with anything shaped like it.

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = make_schedule("step", opt, total_steps=64000)       # the paper's /10 drops
    for x, y in batches:
        opt.zero_grad()
        ...forward, backward (fills every p.grad)...
        opt.step()          # p.data -= lr * (update)
        sched.step()        # sets opt.lr for the next iteration

The update is exactly ``torch.optim.SGD``'s, and the schedules give exactly the values of
``torch.optim.lr_scheduler`` (MultiStepLR, CosineAnnealingLR, LinearLR, SequentialLR) for the
same settings; tests/test_optim.py checks both against fixtures made by PyTorch.
"""
import math
from bisect import bisect_right

from ..backend import to_numpy, xp_of


def _check_number(name, value, low, low_ok=True):
    """``value`` as a float, or a ValueError saying what was expected (>= or > ``low``)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < low or (value == low and not low_ok):
        raise ValueError(f"{name} must be a finite number {'>=' if low_ok else '>'} {low}, got {value}")
    return value


class SGD:
    """SGD with momentum, Nesterov momentum, dampening and (L2) weight decay, torch's update.

    For each parameter ``p`` with gradient ``grad``, one ``step()`` does::

        g = grad + weight_decay * p              # L2 regularisation, folded into the gradient
        buf = g                                  # first step: the velocity starts at g
        buf = momentum * buf + (1 - dampening) * g     # later steps
        g = g + momentum * buf  if nesterov  else  buf
        p = p - lr * g                           # in place: p.data is updated, never replaced

    Note the velocity holds gradients, not steps: lr multiplies at the end (this is PyTorch's
    convention, and why changing lr mid-training takes effect at once).

    A parameter whose ``requires_grad`` is False (``Module.freeze``) is skipped: no update, no weight
    decay, no velocity, as PyTorch skips one without a gradient; so ``SGD(model.parameters())``
    trains only what is not frozen, and a parameter unfrozen later starts its velocity then.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False, dampening=0.0):
        if hasattr(params, "data") or hasattr(params, "parameters"):
            raise TypeError("SGD expects an iterable of parameters, e.g. SGD(model.parameters(), lr=0.1), "
                            f"got a single {type(params).__name__}")
        try:
            self.params = list(params)  # a generator can be read only once: keep the list
        except TypeError:
            raise TypeError(f"SGD expects an iterable of parameters, got {type(params).__name__}") from None
        if not self.params:
            raise ValueError("SGD got an empty list of parameters (nothing to optimise)")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("the same parameter appears twice in SGD's list: it would be updated twice")
        for i, p in enumerate(self.params):
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"parameter {i} ({type(p).__name__}) has no .data and .grad arrays")
            if not hasattr(p.data, "dtype") or p.data.dtype.kind != "f":
                raise TypeError(f"parameter {i} must hold a floating-point array, got "
                                f"{getattr(p.data, 'dtype', type(p.data).__name__)}")
            self._check_grad(i, p)

        _check_number("lr", lr, 0.0, low_ok=False)  # a schedule may reach 0 later, not here
        self._set_hyper(lr, momentum, weight_decay, nesterov, dampening)
        self.step_count = 0
        # One velocity per parameter, created at the first step (None before it, or without momentum).
        self.buffers = [None] * len(self.params)

    def _set_hyper(self, lr, momentum, weight_decay, nesterov, dampening):
        self.lr = lr  # checked by the property below
        self.momentum = _check_number("momentum", momentum, 0.0)
        self.weight_decay = _check_number("weight_decay", weight_decay, 0.0)
        self.dampening = _check_number("dampening", dampening, 0.0)
        if self.dampening > 1:
            raise ValueError(f"dampening must be between 0 and 1, got {self.dampening}")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={self.momentum}, dampening={self.dampening}")

    @property
    def lr(self):
        """The learning rate used by the next ``step()``; a schedule sets it."""
        return self._lr

    @lr.setter
    def lr(self, value):
        # A plain Python float: a numpy.float64 lr would promote float32 updates to float64.
        # 0 is allowed here: a cosine schedule ends there.
        self._lr = _check_number("lr", value, 0.0)

    def _check_grad(self, i, p):
        if p.grad is None:
            raise ValueError(f"parameter {i} has no gradient (grad is None); run backward first")
        xp_of(p.data, p.grad)  # a clear DeviceError if one is NumPy and the other CuPy
        if p.grad.shape != p.data.shape or p.grad.dtype != p.data.dtype:
            raise ValueError(f"parameter {i}: grad must match data, expected shape {tuple(p.data.shape)} "
                             f"dtype {p.data.dtype}, got shape {tuple(p.grad.shape)} dtype {p.grad.dtype}")

    def zero_grad(self):
        """Set every gradient to 0, in place (layers *add* into ``.grad`` during backward)."""
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        """Apply one update to every parameter, in place."""
        for i, p in enumerate(self.params):  # all checked first: never half an update
            self._check_grad(i, p)
        lr, momentum, dampening, wd = self._lr, self.momentum, self.dampening, self.weight_decay
        for i, p in enumerate(self.params):
            if not getattr(p, "requires_grad", True):
                continue                                  # frozen: not trained
            g = p.grad
            if wd != 0:
                g = g + wd * p.data
            if momentum != 0:
                buf = self.buffers[i]
                if buf is None:
                    # a copy: p.grad is zeroed in place before the next step
                    buf = self.buffers[i] = g.copy()
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if self.nesterov else buf
            p.data -= lr * g
        self.step_count += 1

    def state_dict(self):
        """Everything needed to resume: ``{'hyper': JSON-able dict, 'buffers': list of NumPy arrays}``.

        ``buffers`` holds one copy of each velocity, in parameter order (empty before the first
        step or without momentum), as NumPy arrays so that ``numpy.savez`` can store them.
        """
        hyper = {"kind": "SGD", "lr": self._lr, "momentum": self.momentum,
                 "weight_decay": self.weight_decay, "nesterov": self.nesterov,
                 "dampening": self.dampening, "step_count": self.step_count,
                 "n_params": len(self.params)}
        # A frozen parameter has no velocity yet: saved as zeros (after a resume its first step
        # starts the velocity at (1 - dampening) * g, which is g without dampening).
        buffers = [] if all(b is None for b in self.buffers) else [
            to_numpy(xp_of(p.data).zeros_like(p.data) if b is None else b).copy()
            for p, b in zip(self.params, self.buffers)]
        return {"hyper": hyper, "buffers": buffers}

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` saved; the buffers move to each parameter's device and dtype."""
        try:
            hyper, buffers = state["hyper"], list(state["buffers"])
        except (TypeError, KeyError):
            raise ValueError("an SGD state must be a dict with 'hyper' and 'buffers', as made by "
                             "SGD.state_dict()") from None
        if hyper.get("kind") != "SGD":
            raise ValueError(f"this state is not an SGD state (kind={hyper.get('kind')!r})")
        missing = {"lr", "momentum", "weight_decay", "nesterov", "dampening", "step_count",
                   "n_params"} - set(hyper)
        if missing:
            raise ValueError(f"the SGD state lacks {sorted(missing)}")
        if hyper["n_params"] != len(self.params):
            raise ValueError(f"the state was saved for {hyper['n_params']} parameters, "
                             f"this optimizer has {len(self.params)}")
        if buffers and len(buffers) != len(self.params):
            raise ValueError(f"the state holds {len(buffers)} momentum buffers for {len(self.params)} parameters")
        new_buffers = [None] * len(self.params)
        for i, (p, b) in enumerate(zip(self.params, buffers)):
            if tuple(b.shape) != tuple(p.data.shape):
                raise ValueError(f"momentum buffer {i} has shape {tuple(b.shape)}, "
                                 f"parameter {i} has shape {tuple(p.data.shape)}")
            xp = xp_of(p.data)
            new_buffers[i] = xp.array(b, dtype=p.data.dtype)  # a copy, on the parameter's device
        self._set_hyper(hyper["lr"], hyper["momentum"], hyper["weight_decay"],
                        hyper["nesterov"], hyper["dampening"])
        self.step_count = int(hyper["step_count"])
        self.buffers = new_buffers


# ----------------------------------------------------------------------------------------------
# Learning-rate schedules. Each one is a pure function of the iteration count t (lr_at(t)),
# plus a counter: step() does t += 1 and writes lr_at(t) into optimizer.lr. A schedule never
# reads optimizer.lr after construction, so it cannot drift, and resuming only needs t.
# ----------------------------------------------------------------------------------------------

class Schedule:
    """Base class: ``lr`` is the current value, ``step()`` advances one iteration.

    ``base_lr`` is the optimizer's lr when the schedule is made (or ``base_lr=`` given).
    Construction already sets ``optimizer.lr = lr_at(0)`` (e.g. the first warm-up value).
    """

    kind = "constant"

    def __init__(self, optimizer, base_lr=None):
        self.optimizer = optimizer
        self.base_lr = _check_number("base_lr", optimizer.lr if base_lr is None else base_lr, 0.0, low_ok=False)
        self.t = 0
        self.optimizer.lr = self.lr

    def lr_at(self, t):
        """The learning rate after ``t`` optimizer steps (t >= 0)."""
        return self.base_lr

    @property
    def lr(self):
        return self.lr_at(self.t)

    def step(self):
        """Call once after each ``optimizer.step()``."""
        self.t += 1
        self.optimizer.lr = self.lr

    def _settings(self):
        return {}

    def state_dict(self):
        """A plain JSON-able dict: kind, base_lr, t and the settings."""
        return {"kind": self.kind, "base_lr": self.base_lr, "t": self.t, **self._settings()}

    def load_state_dict(self, state):
        """Restore a saved schedule exactly (the saved settings win, as in PyTorch)."""
        if not isinstance(state, dict) or state.get("kind") != self.kind:
            kind = state.get("kind") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"cannot load a {kind!r} schedule state into a {self.kind!r} schedule")
        missing = {"base_lr", "t", *self._settings()} - set(state)
        if missing:
            raise ValueError(f"the {self.kind!r} schedule state lacks {sorted(missing)}")
        for key in self._settings():
            setattr(self, key, state[key])
        self.base_lr, self.t = float(state["base_lr"]), int(state["t"])
        self.optimizer.lr = self.lr

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}(base_lr={self.base_lr}, t={self.t}{', ' if settings else ''}{settings})"


ConstantLR = Schedule


class MultiStepLR(Schedule):
    """lr = base_lr * gamma ** (number of milestones <= t).

    The ResNet paper (CIFAR-10): lr 0.1, divided by 10 at 32k and 48k of 64k iterations,
    i.e. ``MultiStepLR(opt, [32000, 48000], gamma=0.1)``. Same values as torch's MultiStepLR.
    """

    kind = "step"

    def __init__(self, optimizer, milestones, gamma=0.1, base_lr=None):
        # sorted, repeats kept: a milestone given twice multiplies by gamma twice (as in torch)
        try:
            milestones = sorted(int(m) for m in milestones)
        except (TypeError, ValueError):
            raise TypeError(f"milestones must be a list of iteration counts, got {milestones!r}") from None
        if any(m <= 0 for m in milestones):
            raise ValueError(f"milestones must be positive iteration counts, got {milestones}")
        self.milestones = milestones
        self.gamma = _check_number("gamma", gamma, 0.0, low_ok=False)
        super().__init__(optimizer, base_lr)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** bisect_right(self.milestones, t)

    def _settings(self):
        return {"milestones": list(self.milestones), "gamma": self.gamma}


class CosineLR(Schedule):
    """Half a cosine from base_lr (t = 0) down to min_lr (t = total_steps), then min_lr.

        lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2

    Same values as torch's CosineAnnealingLR(T_max=total_steps, eta_min=min_lr) for
    t <= total_steps; after that torch climbs back up, this one stays at min_lr.
    """

    kind = "cosine"

    def __init__(self, optimizer, total_steps, min_lr=0.0, base_lr=None):
        self.total_steps = int(_check_number("total_steps", total_steps, 1))
        self.min_lr = _check_number("min_lr", min_lr, 0.0)
        super().__init__(optimizer, base_lr)

    def lr_at(self, t):
        t = min(t, self.total_steps)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total_steps)) / 2

    def _settings(self):
        return {"total_steps": self.total_steps, "min_lr": self.min_lr}


class LinearWarmup(Schedule):
    """A linear ramp from start_factor * base_lr to base_lr over warmup_steps, then ``after``.

        lr = base_lr * (start_factor + (1 - start_factor) * t / warmup_steps)     t < warmup_steps
        lr = after.lr_at(t - warmup_steps)                                       t >= warmup_steps

    Without ``after`` the lr stays at base_lr (torch's LinearLR(start_factor, total_iters=
    warmup_steps)). With it, the second schedule starts its own clock when the warm-up ends
    (torch's SequentialLR([LinearLR(...), after], milestones=[warmup_steps])):

        LinearWarmup(opt, 500, start_factor=0.1, after=CosineLR(opt, total_steps - 500))
    """

    kind = "warmup"

    def __init__(self, optimizer, warmup_steps, start_factor=0.1, after=None, base_lr=None):
        self.warmup_steps = int(_check_number("warmup_steps", warmup_steps, 1))
        self.start_factor = _check_number("start_factor", start_factor, 0.0, low_ok=False)
        if self.start_factor > 1:
            raise ValueError(f"start_factor must be in (0, 1], got {self.start_factor}")
        if after is not None and not isinstance(after, Schedule):
            raise TypeError(f"after must be a schedule (e.g. CosineLR), got {type(after).__name__}")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("the schedule given as after= drives a different optimizer")
        self.after = after
        if base_lr is None and after is not None:
            base_lr = after.base_lr  # the ramp climbs to where the next schedule starts
        super().__init__(optimizer, base_lr)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * (self.start_factor + (1 - self.start_factor) * t / self.warmup_steps)
        return self.base_lr if self.after is None else self.after.lr_at(t - self.warmup_steps)

    def step(self):
        super().step()
        if self.after is not None:  # keep the next schedule's own clock readable
            self.after.t = max(0, self.t - self.warmup_steps)

    def _settings(self):
        return {"warmup_steps": self.warmup_steps, "start_factor": self.start_factor}

    def state_dict(self):
        state = super().state_dict()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def load_state_dict(self, state):
        if (state.get("after") is None) != (self.after is None):
            raise ValueError("the saved warm-up and this one differ in what follows the warm-up")
        if self.after is not None:
            self.after.load_state_dict(state["after"])
        super().load_state_dict(state)


SCHEDULES = ("step", "cosine", "constant")


def make_schedule(name, optimizer, total_steps, milestones=None, gamma=0.1, min_lr=0.0,
                  warmup_steps=0, warmup_start_factor=0.1):
    """The schedule the command line asks for (``--schedule step|cosine|constant``).

    total_steps counts every iteration, warm-up included. 'step' without milestones uses the
    paper's: /10 at 50% and 75% of training (32k and 48k of 64k). With warmup_steps > 0 a linear
    warm-up comes first and the named schedule then runs over the remaining steps.
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    total_steps = int(_check_number("total_steps", total_steps, 1))
    warmup_steps = int(_check_number("warmup_steps", warmup_steps, 0))
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be smaller than total_steps ({total_steps})")
    main_steps = total_steps - warmup_steps
    if name == "step":
        if milestones is None:
            milestones = [max(1, main_steps // 2), max(1, (3 * main_steps) // 4)]
            milestones = sorted(set(milestones))
        main = MultiStepLR(optimizer, milestones, gamma)
    elif name == "cosine":
        main = CosineLR(optimizer, main_steps, min_lr)
    else:
        main = ConstantLR(optimizer)
    if warmup_steps == 0:
        return main
    return LinearWarmup(optimizer, warmup_steps, warmup_start_factor, after=main)
