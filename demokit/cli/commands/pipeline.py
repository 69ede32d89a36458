"""`demokit pipeline`: the README's main job (filled in by the pipeline work)."""

import typer


def register(app: typer.Typer) -> None:
    @app.command("version")
    def version() -> None:
        """Print demokit's version."""
        from demokit._version import __version__
        print(__version__)
