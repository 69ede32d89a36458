"""`demokit convert SRC DST`: Minari / D4RL / DI-engine / robomimic / imitation / LeRobot data <-> demokit datasets."""

from __future__ import annotations

import warnings
from typing import Optional

import typer

from demokit.config import field_help
from demokit.data.convert import ConvertConfig, convert


def register(app: typer.Typer) -> None:
    @app.command("convert")
    def convert_cmd(
        src: str = typer.Argument(..., metavar="SRC", help="source: a demokit .h5, a Minari dataset directory (or its data/), "
                                            "a D4RL-style .hdf5 file, DI-engine expert data (.pkl / torch.save, or its *_demos.hdf5), "
                                            "a robomimic .hdf5, an imitation trajectory folder (Hugging Face datasets) "
                                            "or a LeRobot v3.0 folder"),
        dst: str = typer.Argument(..., metavar="DST", help="output: NAME.h5 (demokit), a directory such as out/cartpole-expert-v0/ "
                                            "(Minari), NAME.pkl (DI-engine), or any path with --to"),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(ConvertConfig, "env_id")),
        force: bool = typer.Option(False, "--force", help=field_help(ConvertConfig, "force")),
        compression: Optional[str] = typer.Option(None, "--compression", help=field_help(ConvertConfig, "compression")),
        to: Optional[str] = typer.Option(None, "--to", help=field_help(ConvertConfig, "to")),
        dataset_id: Optional[str] = typer.Option(None, "--dataset-id", help=field_help(ConvertConfig, "dataset_id")),
        minari_format: Optional[str] = typer.Option(None, "--minari-format",
                                                    help=field_help(ConvertConfig, "minari_data_format")),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Convert demonstration data between demokit and Minari, D4RL, DI-engine, robomimic, imitation or LeRobot
        (kinds are detected).

        Counts and shapes are checked first; inconsistent or unsafe input is refused and nothing is written.
        Pickles are read without running any code in them. See docs/converters.md.
        """
        from demokit.cli.output import emit_json, err_console, out_console

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            with err_console.status(f"converting {src}", spinner="dots"):
                result = convert(src, dst, env_id=env, force=force or None, compression=compression, to=to,
                                 dataset_id=dataset_id, minari_data_format=minari_format)
        for w in caught:
            err_console.print(f"warning: {w.message}", markup=False, highlight=False, soft_wrap=True)
        if result.target_kind == "demokit":  # the cheap dataset checks on what was written
            from demokit.data.doctor import cheap_warnings

            for line in cheap_warnings(result.path):
                err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
        if json_out:
            emit_json(result.to_dict())
        else:
            inferred = " (spaces inferred from the data)" if result.spaces_inferred else ""
            out_console.print(f"converted {result.source_kind} {src} -> {result.target_kind} {result.path}: "
                              f"{result.episodes:,} episodes, {result.steps:,} steps{inferred}",
                              markup=False, highlight=False, soft_wrap=True)
