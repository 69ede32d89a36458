"""Figures of runs and datasets (matplotlib, the ``plot`` extra): ``plot(paths, out)``.

* Datasets (``.h5``): histograms of the episode returns and lengths (several datasets overlaid).
* Run folders (:mod:`demokit.runs`): learning curves - the evaluation return against the x of the
  metrics rows (env steps; epochs for BC, rounds for DAgger) and against wall time, with the
  expert's level (``expert_return`` of the run's config: the dataset's mean return) and the env's
  ``reward_threshold`` as horizontal lines. Runs of the same command, env and algorithm are one
  curve: with several seeds, their mean and a band of +/- one standard deviation (interpolated on
  the x range all of them cover). Runs whose rows hold discriminator statistics
  (``reward_model/d_expert`` / ``d_policy`` / ``loss``) get a third panel with them.

The figure is written atomically (a temporary file renamed), as PNG or SVG by the suffix of ``out``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demokit.errors import UserError

FORMATS = (".png", ".svg")
DISCRIMINATOR_KEYS = ("reward_model/d_expert", "reward_model/d_policy", "reward_model/loss")
#: the third panel: the first of these whose keys some run has (title, y label, keys)
EXTRA_PANELS = (("discriminator (D(expert), D(policy), loss)", "discriminator", DISCRIMINATOR_KEYS),
                ("training and validation loss", "loss", ("loss", "val_loss")))


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("demokit plot needs matplotlib: pip install 'demokit[plot]' (or pip install matplotlib)") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, force: bool = True) -> Path:
    """Draw the datasets or run folders ``paths`` into ``out`` (.png / .svg); returns ``out``."""
    out_p = Path(out)
    if out_p.suffix.lower() not in FORMATS:
        raise UserError(f"--out {out_p}: give a .png or .svg file name")
    if out_p.is_dir():
        raise UserError(f"--out {out_p} is a directory; give a file name such as {out_p / 'curves.png'}")
    if out_p.exists() and not force:
        raise UserError(f"{out_p} already exists; pass --force to replace it")
    if not paths:
        raise UserError("give at least one run folder or dataset to plot")
    datasets = [Path(p) for p in paths if Path(p).is_file()]
    runs = [Path(p) for p in paths if not Path(p).is_file()]
    if datasets and runs:
        raise UserError("plot either datasets (.h5 files) or run folders, not both in one figure")
    plt = _pyplot()
    fig = _dataset_figure(plt, datasets) if datasets else _runs_figure(plt, runs)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_p.with_name(f".{out_p.stem}.tmp-{os.getpid()}{out_p.suffix}")
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, out_p)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out_p


# ---------------------------------------------------------------------------------------
# datasets


def _dataset_figure(plt: Any, paths: list[Path]) -> Any:
    from demokit.data import load_dataset

    loaded = [load_dataset(p) for p in paths]
    fig, (ax_r, ax_l) = plt.subplots(1, 2, figsize=(10, 3.8))
    rewarded = [d for d in loaded if d.has_rewards]  # reward-free datasets have no return histogram
    all_r = np.concatenate([d.episode_returns for d in rewarded] or [np.zeros(0)])
    all_l = np.concatenate([d.episode_lengths for d in loaded])
    if not len(all_l):
        raise UserError(f"{', '.join(map(str, paths))}: no episodes to plot")
    bins_r = _bins(all_r) if len(all_r) else None
    bins_l = _bins(all_l.astype(np.float64))
    alpha = 0.85 if len(loaded) == 1 else 0.5
    for d in loaded:
        label = f"{d.path.name} ({d.num_episodes} episodes)"
        ax_l.hist(d.episode_lengths, bins=bins_l, alpha=alpha, label=label, edgecolor="white", linewidth=0.5)
        if d.has_rewards and d.num_episodes:
            ax_r.hist(d.episode_returns, bins=bins_r, alpha=alpha, label=label, edgecolor="white", linewidth=0.5)
            ax_r.axvline(float(d.episode_returns.mean()), color="black", linestyle="--", linewidth=1)
    free = [d.path.name for d in loaded if not d.has_rewards]
    if free:
        ax_r.text(0.5, 0.5, f"no rewards in {', '.join(free)}\n(reward-free: no return histogram)",
                  transform=ax_r.transAxes, ha="center", va="center", fontsize=9)
    ax_r.set(xlabel="episode return", ylabel="episodes", title="returns (dashed: mean)")
    ax_l.set(xlabel="episode length (steps)", ylabel="episodes", title="lengths")
    envs = sorted({d.env_id or "unknown env" for d in loaded})
    fig.suptitle(f"{', '.join(envs)}: {sum(d.num_episodes for d in loaded):,} episodes, "
                 f"{sum(len(d) for d in loaded):,} steps")
    if rewarded:
        ax_r.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bins(values: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi - lo < 1e-9:
        return np.array([lo - 0.5, hi + 0.5])
    return np.linspace(lo, hi, min(40, max(5, int(math.sqrt(len(values))) * 2)) + 1)


# ---------------------------------------------------------------------------------------
# runs


def _group_key(run: dict[str, Any]) -> str:
    cfg = run["config"]
    return " ".join(str(x) for x in (cfg.get("command"), cfg.get("env_id"), cfg.get("algo")) if x)


def _series(rows: list[dict[str, Any]], y: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(float(r[x]), float(r[y])) for r in rows
           if isinstance(r.get(x), (int, float)) and isinstance(r.get(y), (int, float))]
    if not pts:
        return np.zeros(0), np.zeros(0)
    arr = np.array(sorted(pts))
    return arr[:, 0], arr[:, 1]


def _draw(ax: Any, curves: list[tuple[np.ndarray, np.ndarray]], label: str, color: Any) -> bool:
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return False
    if len(curves) == 1:
        x, y = curves[0]
        ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=label, color=color)
        return True
    lo = max(x[0] for x, _ in curves)
    hi = min(x[-1] for x, _ in curves)
    if hi <= lo:  # the seeds cover no common range: draw them one by one
        for i, (x, y) in enumerate(curves):
            ax.plot(x, y, color=color, alpha=0.6, label=label if i == 0 else None)
        return True
    grid = np.unique(np.concatenate([x[(x >= lo) & (x <= hi)] for x, _ in curves]))
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    mean, std = ys.mean(axis=0), ys.std(axis=0)
    ax.plot(grid, mean, color=color, label=f"{label} (mean of {len(curves)} runs)")
    ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2)
    return True


def _runs_figure(plt: Any, paths: list[Path]) -> Any:
    from demokit.runs import read_run

    runs = [read_run(p) for p in paths]
    kinds = {_x_kind(run["rows"]) for run in runs}
    if len(kinds) > 1:
        raise UserError(f"the runs count progress differently ({', '.join(sorted(kinds))}): plot runs with env steps "
                        f"(train-expert, gail) apart from runs with epochs (bc-train) or rounds (dagger)")
    x_label = kinds.pop()
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(_group_key(run), []).append(run)
    panel = next((p for p in EXTRA_PANELS if any(k in r for run in runs for r in run["rows"] for k in p[2])), None)
    with_disc = panel is not None
    n_panels = 3 if with_disc else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 4))
    ax_step, ax_wall = axes[0], axes[1]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = False
    for i, (label, members) in enumerate(groups.items()):
        color = colors[i % len(colors)]
        rows_of = [m["rows"] for m in members]
        x_key = "step"
        # evaluations when every run has a curve of them, else the training episodes' returns (runs without
        # periodic evaluation, e.g. train-expert with --timesteps) with the final evaluation as a marker
        n_eval = min(len(_series(rows, "eval_return", x_key)[0]) for rows in rows_of)
        has_train = all(len(_series(rows, "train_return", x_key)[0]) for rows in rows_of)
        y_key = "eval_return" if n_eval > 1 or not has_train else "train_return"
        shown = label if y_key == "eval_return" else f"{label} (training episodes)"
        drawn |= _draw(ax_step, [_series(rows, y_key, x_key) for rows in rows_of], shown, color)
        _draw(ax_wall, [_series(rows, y_key, "wall_s") for rows in rows_of], shown, color)
        if y_key == "train_return":
            for rows in rows_of:
                finals = [r for r in rows if isinstance(r.get("eval_return"), (int, float))][-1:]
                for r in finals:
                    ax_step.plot([r[x_key]], [r["eval_return"]], marker="*", markersize=11, color=color,
                                 linestyle="none", label=f"{label} final evaluation" if r is finals[0] and
                                 rows is rows_of[0] else None)
                    ax_wall.plot([r["wall_s"]], [r["eval_return"]], marker="*", markersize=11, color=color,
                                 linestyle="none")
        if with_disc:
            for key, style in zip(panel[2], ("-", "--", ":")):
                curves = [_series(rows, key, x_key) for rows in rows_of]
                if any(len(x) for x, _ in curves):
                    _draw(axes[2], curves, f"{label} {key.split('/')[-1]}", color)
                    axes[2].lines[-1].set_linestyle(style)
    if not drawn:
        raise UserError(f"{', '.join(map(str, paths))}: the run(s) hold no return rows yet (metrics.jsonl has no "
                        f"eval_return / train_return); nothing to plot")
    for ax in (ax_step, ax_wall):
        _reference_lines(ax, runs)
        ax.set_ylabel("episode return (true env reward)")
        ax.grid(alpha=0.3)
    ax_step.set(xlabel=x_label, title="return vs training progress")
    ax_step.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useOffset=False)
    ax_wall.set(xlabel="wall time (s)", title="return vs wall time")
    ax_step.legend(fontsize=8, loc="best")
    if with_disc:
        axes[2].set(xlabel=x_label, ylabel=panel[1], title=panel[0])
        axes[2].grid(alpha=0.3)
        axes[2].legend(fontsize=7)
    envs = sorted({str(r["config"].get("env_id")) for r in runs})
    fig.suptitle(", ".join(envs))
    fig.tight_layout()
    return fig


def _x_kind(rows: list[dict[str, Any]]) -> str:
    """What a run's ``step`` counts: env steps, epochs (BC) or rounds (DAgger)."""
    if any("env_steps" in r for r in rows):
        return "env steps"
    return "epoch" if any("epoch" in r for r in rows) else "round"


def _reference_lines(ax: Any, runs: list[dict[str, Any]]) -> None:
    experts = {float(r["config"]["expert_return"]) for r in runs
               if isinstance(r["config"].get("expert_return"), (int, float))}
    thresholds = {float(r["config"]["reward_threshold"]) for r in runs
                  if isinstance(r["config"].get("reward_threshold"), (int, float))}
    for k, v in enumerate(sorted(experts)):
        ax.axhline(v, color="black", linestyle="--", linewidth=1, label="expert (dataset mean)" if k == 0 else None)
    for k, v in enumerate(sorted(thresholds)):
        ax.axhline(v, color="tab:red", linestyle=":", linewidth=1, label="env reward_threshold" if k == 0 else None)
