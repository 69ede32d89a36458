"""The zoo learns: `demokit irl --reward-model NAME` at its defaults reaches 475 on CartPole-v1 from the
10-episode reference dataset (slow).

Only the two cheapest models run here (sqil with dqn, red with ppo: ~10-30 s each on the loaded 2-core
machine); the others (pwil, airl, drex, and trex on ranked data) took longer together than the suite's
budget allows, so their measured runs (3 seeds) are in docs/benchmarks.md ("Reward-model zoo"), made by
benchmarks/irl_zoo_table.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demokit.cli.app import main

REFERENCE = Path(__file__).resolve().parents[2] / "datasets" / "cartpole-v1-expert.h5"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "algo"), [("sqil", "dqn"), ("red", "ppo")])
def test_reaches_the_threshold_from_ten_episodes(name: str, algo: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{name}.pt"
    rc = main(["irl", "--reward-model", name, "--expert", str(REFERENCE), "--seed", "0", "--device", "cpu",
               "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["algo"] == f"{name}-{algo}"  # the default learner
    assert result["converged"] and result["mean_return"] >= 475, result
