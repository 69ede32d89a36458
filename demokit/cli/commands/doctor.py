"""`demokit doctor DATASET`: check a dataset for what would silently spoil training."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        dataset: Path = typer.Argument(..., help="demokit .h5 dataset to check", show_default=False),
        json_out: bool = typer.Option(False, "--json", help="print the report as one JSON object (last stdout line)"),
    ) -> int:
        """Check a dataset: NaN/inf, values outside the spaces, time-limit ends recorded as terminations,
        empty or duplicated episodes, the episode index, and the env's installed spec against the recorded one.

        Each finding names the episodes it concerns and a fix. Exit status: 0 clean, 1 findings, 2 not a dataset.
        """
        from demokit.cli.output import emit_json, out_console
        from demokit.data.doctor import diagnose

        report = diagnose(dataset)
        if json_out:
            emit_json(report.to_dict())
            return 0 if report.ok else 1
        head = f"{report.path}: {report.episodes:,} episodes, {report.steps:,} steps, env {report.env_id or '-'}"
        if report.ok:
            out_console.print(f"{head}: no problems found ({', '.join(report.checks)} checked)",
                              markup=False, highlight=False, soft_wrap=True)
            return 0
        out_console.print(f"{head}: {len(report.findings)} finding(s)", markup=False, highlight=False, soft_wrap=True)
        for f in report.findings:
            out_console.print(f"{f.severity} [{f.check}] {f.message}", markup=False, highlight=False, soft_wrap=True)
            out_console.print(f"  fix: {f.fix}", markup=False, highlight=False, soft_wrap=True)
        return 1
