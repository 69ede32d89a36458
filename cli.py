"""Run the demokit command line from a checkout: ``python cli.py --help``.

The same Typer app as the ``demokit`` console script.
"""

from demokit.cli import run

if __name__ == "__main__":
    run()
