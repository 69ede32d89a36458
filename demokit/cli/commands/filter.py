"""`demokit filter`, `demokit split` and `demokit combine`: new datasets made of whole episodes of others."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from demokit.config import field_help
from demokit.data.filter import FilterConfig


def register(app: typer.Typer) -> None:
    @app.command("filter")
    def filter_cmd(
        dataset: Path = typer.Argument(..., help="demokit .h5 dataset to filter", show_default=False),
        out: Path = typer.Option(..., "--out", help="new dataset (.h5) to write", show_default=False),
        top_k: Optional[int] = typer.Option(None, "--top-k", help=field_help(FilterConfig, "top_k"),
                                            show_default=False),
        min_return: Optional[float] = typer.Option(None, "--min-return", help=field_help(FilterConfig, "min_return"),
                                                   show_default=False),
        max_length: Optional[int] = typer.Option(None, "--max-length", help=field_help(FilterConfig, "max_length"),
                                                 show_default=False),
        episodes: Optional[str] = typer.Option(None, "--episodes", help=field_help(FilterConfig, "episodes"),
                                               show_default=False),
        subset: Optional[str] = typer.Option(None, "--subset", help=field_help(FilterConfig, "subset"),
                                             show_default=False),
        force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Write the episodes that pass every given criterion (--top-k is applied last) into a new dataset.

        Whole episodes, in their order; the new file's provenance records the source and the criteria.
        A filter that keeps no episode writes nothing (exit 2).
        """
        from demokit.cli.output import emit_json, out_console
        from demokit.data.filter import filter_dataset, parse_episode_ids

        from demokit.paths import check_output_path

        out = check_output_path(out, kind="dataset", inputs=[dataset], force=force)
        ids = parse_episode_ids(episodes) if episodes is not None else None
        res = filter_dataset(dataset, out, top_k=top_k, min_return=min_return, max_length=max_length, episodes=ids,
                             subset=subset, force=force)
        if json_out:
            emit_json(res.to_dict())
        else:
            mean = "-" if res.mean_return is None else f"{res.mean_return:.2f}"
            out_console.print(f"wrote {res.path}: {res.episodes:,} episodes, {res.steps:,} steps, mean return {mean}",
                              markup=False, highlight=False, soft_wrap=True)

    @app.command("split")
    def split_cmd(
        dataset: Path = typer.Argument(..., help="demokit .h5 dataset to split", show_default=False),
        val_fraction: float = typer.Option(..., "--val-fraction", help="fraction of episodes for val.h5 "
                                           "(rounded; at least 1, at most all but one)", show_default=False),
        seed: int = typer.Option(0, "--seed", help="seed of the episode draw (same seed -> same split)"),
        out: Path = typer.Option(..., "--out", help="directory for train.h5 and val.h5", show_default=False),
        force: bool = typer.Option(False, "--force", help="replace existing train.h5 / val.h5"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Split a dataset by whole episodes into DIR/train.h5 and DIR/val.h5 (both or neither are written)."""
        from demokit.cli.output import emit_json, out_console
        from demokit.data.filter import split_dataset

        from demokit.cli.checks import check_seed
        from demokit.paths import check_output_path

        check_seed(seed)
        for name in ("train.h5", "val.h5"):
            check_output_path(out / name, kind="dataset", inputs=[dataset], force=force)
        res = split_dataset(dataset, out, val_fraction=val_fraction, seed=seed, force=force)
        if json_out:
            emit_json(res.to_dict())
        else:
            for part in (res.train, res.val):
                out_console.print(f"wrote {part.path}: {part.episodes:,} episodes, {part.steps:,} steps",
                                  markup=False, highlight=False, soft_wrap=True)

    @app.command("combine")
    def combine_cmd(
        datasets: List[Path] = typer.Argument(..., help="demokit .h5 datasets to combine, in order",
                                              metavar="DATASET", show_default=False),
        out: Path = typer.Option(..., "--out", help="new dataset (.h5) to write", show_default=False),
        compression: Optional[str] = typer.Option(None, "--compression", metavar="gzip|lzf|blosc|none",
                                                  help="compression of the new dataset (default: the first "
                                                       "dataset's)"),
        force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Write the episodes of several datasets, in the order given, into one new dataset.

        They must hold the same env and the same observation / action spaces (and extras, and rewards or
        none); the new file's provenance lists each source with its own provenance. Written atomically:
        --out appears complete or not at all.
        """
        from demokit.cli.output import emit_json, out_console
        from demokit.data.combine import combine_datasets
        from demokit.paths import check_input_path, check_output_path

        for path in datasets:
            check_input_path(path, what="dataset")
        out = check_output_path(out, kind="dataset", inputs=datasets, force=force)
        res = combine_datasets(datasets, out, force=force, compression="keep" if compression is None else compression)
        if json_out:
            emit_json(res.as_dict())
        else:
            out_console.print(f"wrote {res.path}: {res.episodes:,} episodes, {res.steps:,} steps from "
                              f"{len(res.sources)} datasets", markup=False, highlight=False, soft_wrap=True)
