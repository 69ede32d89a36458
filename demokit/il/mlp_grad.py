"""BC's gradient without the autograd engine, for the common case: an MLP encoder of ``tanh`` layers,
the categorical head, the cross-entropy loss, one process.

:class:`MLPCategoricalGrad` runs the forward pass under ``no_grad`` and then the backward
formulas autograd itself runs for ``F.cross_entropy(policy(x), y, reduction="none").sum()``
seeded with ``seed``, on the same tensors in the same order: ``nll_loss_backward``,
``_log_softmax_backward_data``, and per linear layer (last first) the weight gradient
``g.t().mm(input)`` (addmm's gradient for the transposed weight, transposed back), the bias
gradient ``g.sum(0)``, the input gradient ``g.mm(weight)`` and ``tanh_backward``. The
gradients, the loss and so the weights are therefore **bit-identical** to autograd's
(``tests/il/test_bc.py`` compares both ways on every run of the suite; a torch whose autograd
formulas change would fail there, not silently differ).

Why: a BC step of a 2x64 net at batch 256 on the CPU spends ~45% of its time in fixed
per-step costs, most of it the autograd engine walking 16 graph nodes; without it a step takes
~25% less CPU (docs/benchmarks.md, "Behavioral cloning"). Everything else (other activations,
encoders or heads, the MSE / Gaussian losses, frozen parameters, DistributedDataParallel, which
needs autograd's hooks) trains through autograd: :func:`hand_written_grad` returns None there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from demokit.policies import NeuralPolicy
from demokit.policies.encoders.mlp import MLPEncoder
from demokit.policies.heads.base import Head
from demokit.policies.heads.categorical import CategoricalHead

_nll_forward = torch.ops.aten.nll_loss_forward
_nll_backward = torch.ops.aten.nll_loss_backward
_log_softmax_backward = torch.ops.aten._log_softmax_backward_data
_tanh_backward = torch.ops.aten.tanh_backward

#: reduction codes of the aten loss ops, and the ignore index F.cross_entropy passes
_REDUCTION_NONE = 0
_IGNORE_INDEX = -100


class MLPCategoricalGrad:
    """``(x, y, seed) -> (summed loss, gradients of self.params)`` for one batch (see the module docstring).

    ``params``: the policy's trainable parameters in ``policy.parameters()`` order (weight, bias of
    each hidden layer, then of the head's linear layer); ``x`` (B, D) float32 network inputs
    (normalised), ``y`` (B,) int64 action indices, ``seed`` the float32 0-d gradient of the summed loss.
    """

    def __init__(self, linears: list[nn.Linear]) -> None:
        self.linears = linears
        self.params = [p for lin in linears for p in (lin.weight, lin.bias)]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, seed: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        inputs = [x]
        h = x
        for lin in self.linears[:-1]:
            h = torch.tanh(F.linear(h, lin.weight, lin.bias))
            inputs.append(h)
        head = self.linears[-1]
        log_probs = torch.log_softmax(F.linear(h, head.weight, head.bias), 1)
        losses, total_weight = _nll_forward(log_probs, y, None, _REDUCTION_NONE, _IGNORE_INDEX)
        summed = losses.sum()
        g = _nll_backward(seed.expand(losses.shape), log_probs, y, None, _REDUCTION_NONE, _IGNORE_INDEX, total_weight)
        g = _log_softmax_backward(g, log_probs, 1, log_probs.dtype)
        grads: list[torch.Tensor] = []
        for i in range(len(self.linears) - 1, -1, -1):
            grads += [g.sum(0), g.t().mm(inputs[i])]  # bias, weight (reversed below)
            if i > 0:
                g = _tanh_backward(g.mm(self.linears[i].weight), inputs[i])
        grads.reverse()
        return summed, grads


def hand_written_grad(policy: NeuralPolicy, trainable: list[nn.Parameter], *, loss: str,
                      world_size: int) -> MLPCategoricalGrad | None:
    """The hand-written gradient for ``policy`` when it is exactly the supported case, else None (autograd).

    Supported: one process; an :class:`MLPEncoder` whose layers are ``Linear, Tanh`` pairs and a
    :class:`CategoricalHead` (exact classes: a subclass may change the forward pass) trained with
    the cross-entropy loss; contiguous weights; ``trainable`` (what the optimizer updates) is
    exactly the layers' weights and biases, in order.
    """
    encoder, head = policy.encoder, policy.head
    if world_size != 1 or loss != "nll" or type(encoder) is not MLPEncoder or type(head) is not CategoricalHead \
            or policy.state_head is not None:
        return None
    if type(head).forward is not Head.forward:
        return None
    layers = list(encoder.net)
    if len(layers) % 2 or not all(type(a) is nn.Linear and type(b) is nn.Tanh for a, b in zip(layers[::2], layers[1::2])):
        return None
    linears = [*layers[::2], head.linear]
    grad = MLPCategoricalGrad(linears)
    if any(lin.bias is None or not lin.weight.is_contiguous() for lin in linears):
        return None
    if len(trainable) != len(grad.params) or any(a is not b for a, b in zip(trainable, grad.params)):
        return None
    return grad
