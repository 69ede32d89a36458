"""Known answers: the discriminator loss, the reward forms, the action encoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.errors import ConfigError
from demokit.reward_models import EXPERT_LABEL, POLICY_LABEL, logits_expert_is_one_loss, reward_from_logits
from demokit.reward_models.gail import Discriminator, PolicyRows, encode_actions


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_label_convention_is_expert_one() -> None:
    assert EXPERT_LABEL == 1.0 and POLICY_LABEL == 0.0


def test_loss_known_answer() -> None:
    expert = torch.tensor([0.0, 2.0])
    policy = torch.tensor([-1.0])
    # -mean(log D(expert)) - mean(log(1 - D(policy))), D = sigmoid
    expected = (_softplus(-0.0) + _softplus(-2.0)) / 2 + _softplus(-1.0)
    assert logits_expert_is_one_loss(expert, policy).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.7233, abs=1e-4)


def test_loss_at_chance_and_at_perfect_separation() -> None:
    zeros = torch.zeros(5)
    assert logits_expert_is_one_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # confident and right: ~0; confident and wrong: ~2 * 50 (no log(0) blow-up: logits, not sigmoid + log)
    assert logits_expert_is_one_loss(torch.full((3,), 50.0), torch.full((3,), -50.0)).item() < 1e-12
    wrong = logits_expert_is_one_loss(torch.full((3,), -50.0), torch.full((3,), 50.0))
    assert wrong.item() == pytest.approx(100.0, rel=1e-6)


def test_loss_gradient_pushes_expert_up_and_policy_down() -> None:
    expert = torch.zeros(4, requires_grad=True)
    policy = torch.zeros(4, requires_grad=True)
    logits_expert_is_one_loss(expert, policy).backward()
    assert torch.all(expert.grad < 0) and torch.all(policy.grad > 0)  # descent raises expert logits, lowers policy's


@pytest.mark.parametrize(("form", "expected"), [
    ("logit", [-2.0, 0.0, 3.0]),                                           # log D - log(1 - D)
    ("positive", [_softplus(-2.0), math.log(2), _softplus(3.0)]),          # -log(1 - D)
    ("negative", [-_softplus(2.0), -math.log(2), -_softplus(-3.0)]),       # log D
])
def test_reward_forms_known_answers(form: str, expected: list[float]) -> None:
    z = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    got = reward_from_logits(z, form)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    d = torch.sigmoid(z)
    direct = {"logit": torch.log(d) - torch.log1p(-d), "positive": -torch.log1p(-d), "negative": torch.log(d)}[form]
    np.testing.assert_allclose(got.numpy(), direct.numpy(), rtol=1e-9)


def test_reward_forms_signs_identity_and_stability() -> None:
    z = torch.tensor([-100.0, -3.0, 0.5, 100.0])
    pos, neg, logit = (reward_from_logits(z, f) for f in ("positive", "negative", "logit"))
    assert torch.all(pos > 0) and torch.all(neg < 0)
    torch.testing.assert_close(pos + neg, logit)  # -log(1-D) + log D = log D - log(1-D)
    assert torch.isfinite(torch.stack([pos, neg])).all()
    assert pos[-1].item() == pytest.approx(100.0) and neg[0].item() == pytest.approx(-100.0)


def test_unknown_reward_form() -> None:
    with pytest.raises(ConfigError, match="positive"):
        reward_from_logits(torch.zeros(1), "-log(D)")


def test_one_hot_encoding() -> None:
    got = encode_actions(spaces.Discrete(3, start=1), torch.tensor([1, 3, 2]))
    torch.testing.assert_close(got, torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]))
    got = encode_actions(spaces.Discrete(2), torch.tensor([[1], [0]]))  # DI-engine's (B, 1) actions
    torch.testing.assert_close(got, torch.tensor([[0.0, 1], [1, 0]]))
    md = encode_actions(spaces.MultiDiscrete([2, 3]), torch.tensor([[1, 2], [0, 0]]))
    torch.testing.assert_close(md, torch.tensor([[0.0, 1, 0, 0, 1], [1, 0, 1, 0, 0]]))
    box = encode_actions(spaces.Box(-1, 1, (2, 2)), torch.ones(3, 2, 2))
    assert box.shape == (3, 4)


def test_discriminator_outputs_one_logit_per_row_and_gradient_penalty() -> None:
    torch.manual_seed(0)
    disc = Discriminator(6, (16,))
    assert disc(torch.zeros(7, 6)).shape == (7,)
    x_e, x_p = torch.randn(8, 6), torch.randn(8, 6) + 1
    plain, _, _ = disc.learn(x_e, x_p)
    penalised, _, _ = disc.learn(x_e, x_p, grad_penalty=10.0, generator=torch.Generator().manual_seed(0))
    assert penalised.item() > plain.item()
    penalised.backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_policy_rows_are_the_concatenated_chunks_with_a_sliding_window() -> None:
    """PolicyRows (GAIL's policy data) gives exactly the rows a concatenation of every appended chunk would,
    through growth, compaction, sliding windows and clears."""
    gen = torch.Generator().manual_seed(0)
    rows, ref = PolicyRows(), torch.zeros(0, 3)
    for step in range(400):
        n = int(torch.randint(0, 700, (1,), generator=gen)) if step % 50 else 3000  # some chunks past the capacity
        chunk = torch.randn(n, 3, generator=gen)
        rows.append(chunk)
        ref = torch.cat([ref, chunk])
        if step % 7 == 0:
            rows.keep_latest(1500)
            ref = ref[-1500:]
        if step % 97 == 96:
            rows.clear()
            ref = ref[:0]
        assert len(rows) == ref.shape[0]
        if len(rows):
            assert torch.equal(rows.rows(), ref)
    assert rows._buf is not None and rows._buf.shape[0] <= 4 * (3000 + 1500 + 700)  # bounded by the window, not the total
