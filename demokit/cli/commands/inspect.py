"""`demokit inspect DATASET`: summary of a demonstration dataset (reads the episode index only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from demokit.data.dataset import DemoDataset, load_dataset
from demokit.spaces import describe, space_to_dict


def _stats(values: np.ndarray | None) -> dict[str, float | None]:
    if values is None or values.size == 0:  # None: a reward-free dataset has no returns
        return {"mean": None, "std": None, "min": None, "max": None}
    v = values.astype(np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}


def summarize(ds: DemoDataset) -> dict[str, Any]:
    """The figures `demokit inspect` shows, as a JSON-friendly dict."""
    returns = _stats(ds.episode_returns)
    lengths = _stats(ds.episode_lengths)
    meta = ds.metadata
    return {
        "path": str(ds.path),
        "size_bytes": ds.path.stat().st_size,
        "format": meta.get("format"),
        "format_version": ds.format_version,
        "created": meta.get("created"),
        "modified": meta.get("modified"),
        "demokit_version": meta.get("demokit_version"),
        "env_id": ds.env_id,
        "observation_space": space_to_dict(ds.observation_space),
        "action_space": space_to_dict(ds.action_space),
        "episodes": ds.num_episodes,
        "steps": len(ds),
        "has_rewards": ds.has_rewards,
        "mean_return": returns["mean"],
        "std_return": returns["std"],
        "min_return": returns["min"],
        "max_return": returns["max"],
        "mean_length": lengths["mean"],
        "std_length": lengths["std"],
        "min_length": None if lengths["min"] is None else int(lengths["min"]),
        "max_length": None if lengths["max"] is None else int(lengths["max"]),
        "terminated_episodes": int(ds.episode_terminated.sum()),
        "truncated_episodes": int(ds.episode_truncated.sum()),
        "extras": {k: {"shape": list(shp), "dtype": str(dt)} for k, (shp, dt) in ds.extras_spec.items()},
        "provenance": ds.provenance,
        "appends": len(meta.get("appends") or []),
    }


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render(ds: DemoDataset, summary: dict[str, Any], episodes: int) -> None:
    from rich.table import Table

    from demokit.cli.output import out_console

    t = Table(title=f"dataset {summary['path']}", show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("env", summary["env_id"] or "-")
    t.add_row("observation space", describe(ds.observation_space))
    t.add_row("action space", describe(ds.action_space))
    t.add_row("episodes", f"{summary['episodes']:,}")
    t.add_row("steps", f"{summary['steps']:,}")
    if not summary["has_rewards"]:
        t.add_row("return", "none: the dataset has no rewards (reward-free)")
    else:
        t.add_row("return", f"mean {_fmt(summary['mean_return'])} +/- {_fmt(summary['std_return'])}  "
                            f"(min {_fmt(summary['min_return'])}, max {_fmt(summary['max_return'])})")
    t.add_row("episode length", f"mean {_fmt(summary['mean_length'], 1)} +/- {_fmt(summary['std_length'], 1)}  "
                                f"(min {_fmt(summary['min_length'], 0)}, max {_fmt(summary['max_length'], 0)})")
    t.add_row("ended by", f"{summary['terminated_episodes']} terminated, {summary['truncated_episodes']} truncated, "
                          f"{summary['episodes'] - summary['terminated_episodes'] - summary['truncated_episodes']} neither")
    if summary["extras"]:
        t.add_row("extras", ", ".join(f"{k} {v['dtype']}{tuple(v['shape'])}" for k, v in summary["extras"].items()))
    for key, value in (summary["provenance"] or {}).items():
        t.add_row(f"provenance.{key}", str(value))
    if summary["appends"]:
        t.add_row("appends", str(summary["appends"]))
    t.add_row("format", f"{summary['format']} v{summary['format_version']} (demokit {summary['demokit_version']})")
    t.add_row("created", str(summary["created"]) + (f", modified {summary['modified']}" if summary["modified"] else ""))
    t.add_row("size on disk", _human_size(summary["size_bytes"]))
    out_console.print(t)
    if episodes > 0 and ds.num_episodes:
        frame = ds.episodes_frame().head(episodes)
        et = Table(title=f"first {len(frame)} of {ds.num_episodes} episodes", title_justify="left")
        for col in frame.columns:
            et.add_column(col, justify="right")
        for row in frame.itertuples(index=False):
            et.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row])
        out_console.print(et)


def register(app: typer.Typer) -> None:
    @app.command("inspect")
    def inspect_cmd(
        dataset: Path = typer.Argument(..., help="demokit .h5 dataset to summarise"),
        episodes: int = typer.Option(0, "--episodes", "-n", help="also list the first N episodes"),
        json_out: bool = typer.Option(False, "--json", help="print the summary as one JSON object (last stdout line)"),
    ) -> None:
        """Summarise a dataset: env, spaces, counts, returns, lengths, provenance, format, size."""
        ds = load_dataset(dataset)
        summary = summarize(ds)
        if json_out:
            from demokit.cli.output import emit_json

            emit_json(summary)
        else:
            render(ds, summary, episodes)
