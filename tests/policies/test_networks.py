"""MLP building blocks and make_adam / FusedAdam."""

from __future__ import annotations

import pytest
import torch

from demokit.policies.networks import FusedAdam, clip_grad_norm, make_adam


def _two_nets() -> list[torch.nn.Sequential]:
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    return nets


def _train(net: torch.nn.Module, opt: object, steps: int = 25) -> None:
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 3, generator=gen), torch.randint(0, 2, (32,), generator=gen)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


def test_fused_adam_makes_the_same_updates_as_torch_adam():
    nets = _two_nets()
    ours = FusedAdam(list(nets[0].parameters()), lr=1e-2)
    _train(nets[0], ours)
    _train(nets[1], torch.optim.Adam(nets[1].parameters(), lr=1e-2))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(p.grad is not None for p in ours.params)  # kept until the next zero_grad
    ours.zero_grad()
    assert all(p.grad is None for p in ours.params)


def test_fused_adam_is_bitwise_torch_fused_adam():
    nets = _two_nets()
    _train(nets[0], FusedAdam(nets[0].parameters(), lr=1e-2, eps=1e-5))
    _train(nets[1], torch.optim.Adam(nets[1].parameters(), lr=1e-2, eps=1e-5, fused=True))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


def test_fused_adam_skips_parameters_without_a_gradient_as_torch_adam_does():
    # steps 0-4 train the whole net, steps 5-14 only the last layer (the first layer gets no gradient: it
    # and its moments stay put), steps 15-24 the whole net again: each parameter's own step count decides
    # its bias correction from step 5 on. Bitwise the same as torch.optim.Adam(fused=True), and a state
    # saved in the middle resumes to the same end.
    def train(net, opt, start=0, stop=25, save_at=None):
        gen = torch.Generator().manual_seed(3)
        x, y = torch.randn(32, 3, generator=gen), torch.randint(0, 2, (32,), generator=gen)
        saved = None
        for i in range(start, stop):
            if i == save_at:
                saved = ({k: v.clone() for k, v in net.state_dict().items()}, opt.state_dict())
            opt.zero_grad()
            h = net[0](x)
            if 5 <= i < 15:
                h = h.detach()  # no gradient reaches the first layer
            torch.nn.functional.cross_entropy(net[2](net[1](h)), y).backward()
            opt.step()
        return saved

    nets = _two_nets()
    ours = FusedAdam(nets[0].parameters(), lr=1e-2, eps=1e-5)
    saved = train(nets[0], ours, save_at=10)
    train(nets[1], torch.optim.Adam(nets[1].parameters(), lr=1e-2, eps=1e-5, fused=True))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)
    assert ours.per_parameter and [float(t) for t in ours.steps] == [15.0, 15.0, 25.0, 25.0]
    net_state, opt_state = saved
    resumed = _two_nets()[0]
    resumed.load_state_dict(net_state)
    again = FusedAdam(resumed.parameters(), lr=1e-2, eps=1e-5)
    again.load_state_dict(opt_state)
    train(resumed, again, start=10)
    for a, b in zip(resumed.parameters(), nets[0].parameters()):
        assert torch.equal(a, b)


@pytest.mark.skipif(not hasattr(torch, "_fused_adam_"), reason="this torch has no fused Adam kernel")
def test_make_adam_chooses_direct_only_when_asked_and_possible():
    params = list(torch.nn.Linear(2, 2).parameters())
    assert isinstance(make_adam(params, 1e-3, direct=True), FusedAdam)
    assert isinstance(make_adam(params, 1e-3, direct=True, eps=1e-5), FusedAdam)
    assert make_adam(params, 1e-3, direct=True, eps=1e-5).eps == 1e-5
    # torch.optim.Adam: by default, and for options FusedAdam does not have
    assert isinstance(make_adam(params, 1e-3), torch.optim.Adam)
    assert isinstance(make_adam(params, 1e-3, direct=True, weight_decay=0.1), torch.optim.Adam)
    assert make_adam(params, 1e-3).defaults["fused"]


@pytest.mark.parametrize("max_norm", [0.05, 1e3])  # clipped, and left as they are
def test_clip_grad_norm_is_bitwise_torchs(max_norm):
    nets = _two_nets()
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    for net in nets:
        net(x).pow(2).sum().backward()
    nets[0][0].bias.grad = None  # a parameter without a gradient is left out by both
    nets[1][0].bias.grad = None
    ours = clip_grad_norm(list(nets[0].parameters()), max_norm)
    theirs = torch.nn.utils.clip_grad_norm_(nets[1].parameters(), max_norm)
    assert torch.equal(ours, theirs)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)
