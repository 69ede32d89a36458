"""Ensemble policies: N networks of one architecture as one stacked network, acting with their mean action.

An :class:`EnsemblePolicy` is a :class:`~demokit.policies.NeuralPolicy` (``PolicyArch.ensemble = N > 1``)
whose encoder and head parameters carry a leading member axis: ``encoder.net.0.weight`` is (N, out, in),
``head.linear.bias`` (N, A), ``head.log_std`` (N, A). The observation normalisation is shared (the
members are trained on the same data). :meth:`EnsemblePolicy.member_outputs` runs the N members at once
(``torch.func.vmap`` over the encoder's and head's own forward functions: batched matrix products, one
call for all members), each member on the same batch or on its own batch; ``forward`` is the mean of
the members' outputs, so ``act`` gives the mean of the members' mean actions (clipped to the Box like any
action). Deterministic acting only: the ensemble has no action distribution (``sample`` and the other
distribution calls raise a :class:`~demokit.errors.UserError`). Box actions with the gaussian head only.

Member ``i``'s initial weights are drawn after member ``i - 1``'s from torch's random stream, in the order
a ``NeuralPolicy`` draws them (encoder, then head), so member 0 starts from the weights a one-network
policy built from the same seed starts from. A checkpoint holds the stacked tensors and ``arch.ensemble``;
:func:`~demokit.policies.load_checkpoint` rebuilds the ensemble (``weights_only=True`` as for every policy).
:meth:`EnsemblePolicy.member` gives one member as a plain ``NeuralPolicy``.

Registered as the "ensemble" policy kind in ``demokit/policies/__init__.py``
(:func:`~demokit.policies.neural.build_policy` builds it for ``arch.ensemble > 1``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

import torch
from gymnasium import spaces
from torch import nn
from torch.func import functional_call, vmap

from demokit.errors import UserError
from demokit.policies.distributions import diag_gaussian_nll
from demokit.policies.encoders import MLPEncoder, encoder_class
from demokit.policies.heads import Head, head_class
from demokit.policies.networks import ACTIVATIONS
from demokit.policies.neural import NeuralPolicy, PolicyArch, stack_space


def _stack_into(module: nn.Module, members: list[nn.Module]) -> None:
    """Replace each parameter of ``module`` (member 0) by the stack of the members' (leading member axis)."""
    for name, param in list(module.named_parameters()):
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        stacked = torch.stack([m.get_parameter(name).detach() for m in members])
        setattr(owner, leaf, nn.Parameter(stacked, requires_grad=param.requires_grad))


class EnsemblePolicy(NeuralPolicy):
    """``arch.ensemble`` members of ``arch``'s encoder and head, stacked (see the module docstring)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, arch: PolicyArch) -> None:
        if arch.ensemble < 2:
            raise UserError(f"an ensemble policy needs at least 2 members, got ensemble={arch.ensemble}")
        if arch.head != "gaussian" or not isinstance(action_space, spaces.Box):
            raise UserError(f"an ensemble policy averages continuous actions: it needs a Box action space and the "
                            f"gaussian head, got the {arch.head} head (ensemble={arch.ensemble})")
        if arch.state_dim:
            raise UserError("an ensemble policy has no predicted-state trunk: leave state_dim at 0 (BC: state_head "
                            "none) or ensemble at 1")
        super().__init__(observation_space, action_space, arch)  # member 0: self.encoder, self.head
        encoders: list[nn.Module] = [self.encoder]
        heads: list[nn.Module] = [self.head]
        enc_cls, head_cls = encoder_class(arch.encoder), head_class(arch.head)
        for _ in range(arch.ensemble - 1):  # members 1..N-1, drawn in a NeuralPolicy's order
            encoders.append(enc_cls(stack_space(observation_space, arch.history), arch))
            heads.append(head_cls(self.encoder.out_dim, action_space, arch))
        _stack_into(self.encoder, encoders)
        _stack_into(self.head, heads)
        #: the MLP encoder's exact layers and the head's plain linear output: batched products written out
        #: (``torch.baddbmm``; the same maths as the vmap path, without its per-call overhead: ~25% of a step)
        self._plain_mlp = type(self.encoder) is MLPEncoder and type(self.head).forward is Head.forward and all(
            type(m) is nn.Linear or type(m) in ACTIVATIONS.values() for m in self.encoder.net)

    @property
    def members(self) -> int:
        return self.arch.ensemble

    def _member_output(self, enc_params: dict[str, torch.Tensor], head_params: dict[str, torch.Tensor],
                       x: torch.Tensor) -> torch.Tensor:
        feats = functional_call(self.encoder, enc_params, (x,))
        return functional_call(self.head, head_params, (feats,))

    def member_outputs(self, x: torch.Tensor, *, per_member: bool = False) -> torch.Tensor:
        """The members' head outputs (N, B, A) (action means) on network input ``x``: one batch (B, ...) seen by
        every member, or with ``per_member`` one batch per member (N, B, ...)."""
        if self._plain_mlp:
            return self._mlp_outputs(x if per_member else x.expand(self.members, *x.shape))
        enc = dict(self.encoder.named_parameters())
        head = dict(self.head.named_parameters())
        return vmap(self._member_output, in_dims=(0, 0, 0 if per_member else None))(enc, head, x)

    def _mlp_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """``member_outputs`` of a plain MLP encoder and linear head on per-member inputs (N, B, D)."""
        for layer in [*self.encoder.net, self.head.linear]:
            if type(layer) is nn.Linear:
                x = torch.baddbmm(layer.bias.unsqueeze(1), x, layer.weight.transpose(1, 2))
            else:
                x = layer.forward(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the members' outputs (B, A): the ensemble's mean action."""
        return self.member_outputs(x).mean(0)

    def nll(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-member, per-sample Gaussian negative log-likelihood (N, B) of ``actions`` ((B, A) or (N, B, A))
        under the members' outputs ``out`` (N, B, A) and their own log stds (BC's nll loss)."""
        return diag_gaussian_nll(actions, out, self.head.log_std.unsqueeze(-2))

    def member(self, i: int) -> NeuralPolicy:
        """Member ``i`` as a one-network ``NeuralPolicy`` (copies of its weights and of the shared
        normalisation statistics), e.g. to evaluate the members one by one."""
        if not 0 <= i < self.members:
            raise IndexError(f"member {i} of an ensemble of {self.members}")
        with torch.random.fork_rng(devices=[]):  # its throw-away initial weights draw nothing from the caller's stream
            single = NeuralPolicy(self.observation_space, self.action_space,
                                  dataclasses.replace(self.arch, ensemble=1))
        stacked = ("encoder.", "head.")
        state = {k: (v[i] if k.startswith(stacked) else v).detach().clone() for k, v in self.state_dict().items()}
        single.load_state_dict(state)
        return single.to(self.device).train(self.training)

    # ---- no action distribution ---------------------------------------------------------
    def _no_distribution(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UserError(f"an ensemble policy ({self.members} members) acts deterministically with the mean of its "
                        f"members' actions; it has no action distribution to sample or evaluate: act with "
                        f"deterministic actions")

    sample = rsample = evaluate_actions = distribution = value = _no_distribution  # type: ignore[assignment]
