"""Small MLP building blocks and their optimiser (:func:`make_adam`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from demokit.errors import UserError

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


@contextlib.contextmanager
def init_threads() -> Iterator[None]:
    """One torch thread while weights are initialised: ``orthogonal_`` (a QR) rounds differently
    with more threads, and the same seed must give the same weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def linear(in_dim: int, out_dim: int, *, orthogonal_init: bool = True, gain: float = 1.0) -> nn.Linear:
    """``nn.Linear`` with an orthogonal weight of ``gain`` and a zero bias (default init otherwise).
    Call it inside :func:`init_threads` (as :func:`mlp_layers` and the policy heads do)."""
    lin = nn.Linear(in_dim, out_dim)
    if orthogonal_init:
        nn.init.orthogonal_(lin.weight, gain=gain)
        nn.init.zeros_(lin.bias)
    return lin


def mlp_layers(in_dim: int, hidden_sizes: Sequence[int], *, activation: str = "tanh",
               orthogonal_init: bool = True) -> tuple[list[nn.Module], int]:
    """The hidden part of an MLP: ``[Linear, activation] * len(hidden_sizes)`` (orthogonal gain
    sqrt(2), zero biases) and its output width (``in_dim`` without hidden layers)."""
    if activation not in ACTIVATIONS:
        raise UserError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if any(int(h) < 1 for h in hidden_sizes):
        raise UserError(f"hidden sizes must be positive integers, got {list(hidden_sizes)}")
    layers: list[nn.Module] = []
    last = int(in_dim)
    with init_threads():
        for h in hidden_sizes:
            layers += [linear(last, int(h), orthogonal_init=orthogonal_init, gain=float(np.sqrt(2.0))),
                       ACTIVATIONS[activation]()]
            last = int(h)
    return layers, last


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int, *, activation: str = "tanh",
        orthogonal_init: bool = True, out_gain: float = 1.0) -> nn.Sequential:
    """An MLP ``in_dim -> hidden_sizes... -> out_dim`` (no activation on the output).

    With ``orthogonal_init`` hidden layers get gain sqrt(2) and the output layer
    ``out_gain`` (0.01 for policy logits, 1.0 for values), biases zero.
    """
    layers, last = mlp_layers(in_dim, hidden_sizes, activation=activation, orthogonal_init=orthogonal_init)
    with init_threads():
        layers.append(linear(last, out_dim, orthogonal_init=orthogonal_init, gain=out_gain))
    return nn.Sequential(*layers)


def parse_hidden(text: str | Sequence[int]) -> tuple[int, ...]:
    """'64,64' or [64, 64] -> (64, 64), with a clear error for bad input."""
    if isinstance(text, str):
        try:
            vals = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
        except ValueError:
            raise UserError(f"hidden sizes must look like 64,64, got {text!r}") from None
    else:
        vals = tuple(int(x) for x in text)
    if not vals or any(v < 1 for v in vals):
        raise UserError(f"hidden sizes must be positive integers like 64,64, got {text!r}")
    return vals


def count_parameters(module: nn.Module) -> int:
    return sum(int(p.numel()) for p in module.parameters())


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source (tau=1: hard copy)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(1.0 - tau).add_(s, alpha=tau)


class FusedAdam:
    """Adam through torch's fused kernel, called directly.

    The same update as ``torch.optim.Adam(params, lr, fused=True)`` (same kernel, same
    state), without ``Optimizer.step``'s per-call Python (profiler hooks, state
    look-ups, grouping): about 100 us per step, a third of a small BC step on the CPU. And
    without ``torch.optim`` itself, whose first step imports ``torch._dynamo`` (~2-3 s of
    every process's start-up on a small CPU).
    ``zero_grad`` sets the gradients to None. While every parameter has a gradient at every
    ``step`` (the usual case: BC's, PPO's, SAC's losses use all of them), every parameter has
    taken the same number of steps and one step-count tensor serves them all (one add per
    step instead of a ``_foreach_add_`` over one 0-d tensor per parameter, ~30 us on the CPU).
    A parameter without a gradient is left as it is, moments and step count included, as
    ``torch.optim.Adam`` does: from the first such step on, each parameter counts its own
    steps. Build it with ``make_adam(..., direct=True)``, which falls back to
    ``torch.optim.Adam`` where the kernel is missing.
    """

    def __init__(self, params: Any, *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        device = self.params[0].device if self.params else None
        #: steps taken (float32 0-d tensor, as torch.optim.Adam keeps per parameter); the kernel reads it per parameter
        self.step_count = torch.zeros((), dtype=torch.float32, device=device)
        self.steps = [self.step_count] * len(self.params)
        #: whether each parameter counts its own steps (since a step that some parameter had no gradient for)
        self.per_parameter = False

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (set to None either way: a missing gradient is what ``step`` skips)."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """The moments and the step count(s) (tensors; what resuming a run needs) and the hyperparameters."""
        state = {"exp_avgs": [t.detach().clone() for t in self.exp_avgs],
                 "exp_avg_sqs": [t.detach().clone() for t in self.exp_avg_sqs],
                 "step_count": self.step_count.detach().clone(),
                 "lr": self.lr, "betas": list(self.betas), "eps": self.eps}
        if self.per_parameter:
            state["steps"] = [t.detach().clone() for t in self.steps]
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same parameters, same shapes)."""
        for name in ("exp_avgs", "exp_avg_sqs"):
            ours, theirs = getattr(self, name), state[name]
            if len(ours) != len(theirs) or any(a.shape != b.shape for a, b in zip(ours, theirs)):
                raise ValueError(f"FusedAdam state: {name} do not match the parameters' shapes")
            torch._foreach_copy_(ours, [t.to(a.device) for a, t in zip(ours, theirs)])
        self.step_count.copy_(state["step_count"])
        steps = state.get("steps")
        if steps is not None:
            if len(steps) != len(self.params):
                raise ValueError("FusedAdam state: steps do not match the parameters")
            self.steps = [torch.as_tensor(t, dtype=torch.float32).to(self.step_count.device).clone() for t in steps]
            self.per_parameter = True
        else:
            self.steps = [self.step_count] * len(self.params)
            self.per_parameter = False
        self.lr, self.betas, self.eps = float(state["lr"]), tuple(state["betas"]), float(state["eps"])

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        self.step_count.add_(1)  # the optimizer's steps (each parameter's too while all of them have gradients)
        if not self.per_parameter and all(g is not None for g in grads):
            params, steps, exp_avgs, exp_avg_sqs = self.params, self.steps, self.exp_avgs, self.exp_avg_sqs
        else:
            if not self.per_parameter:  # from now on each parameter counts its own steps
                self.steps = [self.step_count - 1 for _ in self.params]
                self.per_parameter = True
            live = [i for i, g in enumerate(grads) if g is not None]
            if not live:
                return
            params, grads = [self.params[i] for i in live], [grads[i] for i in live]
            steps = [self.steps[i] for i in live]
            exp_avgs, exp_avg_sqs = [self.exp_avgs[i] for i in live], [self.exp_avg_sqs[i] for i in live]
            torch._foreach_add_(steps, 1.0)
        torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                           lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0, eps=self.eps,
                           maximize=False, grad_scale=None, found_inf=None)


@torch.no_grad()
def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)`` (2-norm) for parameters on one device and of one
    dtype, the same numbers, without its per-call grouping and checks (~80 us a call on a small CPU: PPO
    clips 100+ minibatches a rollout). Parameters without a gradient are left out. Returns the total norm."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def set_learning_rate(optimizer: torch.optim.Optimizer | FusedAdam, lr: float) -> None:
    """Set the learning rate of an optimizer from :func:`make_adam` (either kind)."""
    if isinstance(optimizer, FusedAdam):
        optimizer.lr = float(lr)
    else:
        for group in optimizer.param_groups:
            group["lr"] = lr


#: the keyword arguments :class:`FusedAdam` takes besides ``lr``
_DIRECT_KWARGS = frozenset({"betas", "eps"})


def make_adam(params: Any, lr: float, *, direct: bool = False, **kwargs: Any) -> torch.optim.Adam | FusedAdam:
    """Adam, as fast as this torch allows for small nets.

    ``direct=True``: :class:`FusedAdam` (the fused kernel without ``torch.optim``'s per-step
    Python) when torch has the kernel for the parameters' devices (CPU, CUDA) and
    ``kwargs`` are only ``betas`` / ``eps``; for callers that need no ``param_groups``
    (:func:`set_learning_rate` sets either kind's learning rate). Otherwise
    ``torch.optim.Adam(fused=True)`` (about 2x faster steps for small CPU nets than the
    default), or plain ``torch.optim.Adam`` where fused is unsupported.
    """
    params = list(params)
    if (direct and hasattr(torch, "_fused_adam_") and set(kwargs) <= _DIRECT_KWARGS
            and {p.device.type for p in params} <= {"cpu", "cuda"}):
        return FusedAdam(params, lr=lr, **kwargs)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, **kwargs)
