"""`demokit plot`: dataset histograms, learning curves of run folders (seeds as mean and band), refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from demokit.cli.app import main
from demokit.runs import RunFolder

pytest.importorskip("matplotlib")
REFERENCE = Path(__file__).resolve().parents[1] / "datasets" / "cartpole-v1-expert.h5"


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def fake_run(root: Path, name: str, seed: int, *, irl: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    with RunFolder("gail" if irl else "train-expert", "CartPole-v1", config={"seed": seed}, root=root, name=name,
                   info={"algo": "ppo", "reward_threshold": 475.0, "expert_return": 500.0}) as run:
        for k in range(1, 11):
            row = {"step": 1000 * k + seed, "env_steps": 1000 * k + seed, "eval_return": 50 * k + rng.normal()}
            if irl:
                row.update({"reward_model/d_expert": 0.5 + 0.04 * k, "reward_model/d_policy": 0.5 - 0.04 * k})
            run.log_row(row)
        run.finish({})
    return run.path


def test_dataset_histograms_png_and_svg(tmp_path, capsys):
    assert main(["plot", str(REFERENCE), "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(REFERENCE), str(REFERENCE), "--out", str(tmp_path / "d.svg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"] == str(tmp_path / "d.svg")
    assert b"<svg" in (tmp_path / "d.svg").read_bytes()[:400]


def test_seeds_are_one_curve_with_a_band_and_irl_runs_get_a_discriminator_panel(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from demokit.plot import _runs_figure

    runs = [fake_run(tmp_path, f"s{s}", s, irl=True) for s in range(3)]
    fig = _runs_figure(plt, runs)
    ax_step, ax_wall, ax_disc = fig.axes
    labels = [line.get_label() for line in ax_step.lines]
    assert any("mean of 3 runs" in lb for lb in labels)
    assert "expert (dataset mean)" in labels and "env reward_threshold" in labels
    assert ax_step.collections, "the seeds' band"
    mean_line = next(line for line in ax_step.lines if "mean of 3 runs" in line.get_label())
    x, y = mean_line.get_data()
    assert x[0] >= 1002 and x[-1] <= 10000  # the range every seed covers
    np.testing.assert_allclose(y, 50 * x / 1000, atol=3.5)
    assert len(ax_disc.lines) == 2 and ax_wall.lines
    plt.close(fig)


def test_run_folders_plot_to_png(tmp_path):
    runs = [fake_run(tmp_path, f"s{s}", s) for s in range(2)]
    assert main(["plot", *map(str, runs), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 10_000


@pytest.mark.parametrize("case", ["not_a_run", "bad_suffix", "mixed", "missing", "no_rows", "steps_and_epochs"])
def test_refusals_are_one_error_line_and_write_nothing(tmp_path, capsys, case):
    run = fake_run(tmp_path, "r", 0)
    out = tmp_path / "fig.png"
    if case == "not_a_run":
        (tmp_path / "plain").mkdir()
        args = [str(tmp_path / "plain")]
    elif case == "bad_suffix":
        args, out = [str(run)], tmp_path / "fig.jpg"
    elif case == "mixed":
        args = [str(run), str(REFERENCE)]
    elif case == "missing":
        args = [str(tmp_path / "nope")]
    elif case == "no_rows":
        with RunFolder("bc-train", "CartPole-v1", config={}, run_dir=tmp_path / "empty") as empty:
            empty.finish({})
        args = [str(tmp_path / "empty")]
    else:
        with RunFolder("bc-train", "CartPole-v1", config={}, run_dir=tmp_path / "bc") as bc:
            bc.log_row({"step": 1, "epoch": 1, "eval_return": 10.0})
            bc.finish({})
        args = [str(run), str(tmp_path / "bc")]
    assert main(["plot", *args, "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err)
    assert not out.exists() and not list(tmp_path.glob(".fig*"))
