"""`demokit plot RUN_DIR_OR_DATASET... --out FILE.png|.svg`: learning curves and dataset histograms."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("plot")
    def plot_cmd(
        paths: list[Path] = typer.Argument(..., metavar="RUN_DIR_OR_DATASET...", show_default=False,
                                           help="run folders (runs/<command>/<env>/<run>/) or .h5 datasets"),
        out: Path = typer.Option(..., "--out", help="figure to write: FILE.png or FILE.svg", show_default=False),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Plot learning curves of run folders (return vs env steps and wall time, expert level and env threshold,
        seeds as mean and band, discriminator statistics of IRL runs) or the return / length histograms of datasets.
        """
        from demokit.cli.output import emit_json, out_console
        from demokit.plot import plot

        for p in paths:
            if not p.exists():
                from demokit.errors import UserError

                raise UserError(f"{p}: no such run folder or dataset")
        from demokit.paths import check_output_path

        out = check_output_path(out, inputs=paths)  # never an input, a special or read-only file
        written = plot(paths, out)
        if json_out:
            emit_json({"out": str(written), "inputs": [str(p) for p in paths]})
        else:
            out_console.print(f"wrote {written}", markup=False, highlight=False, soft_wrap=True)
