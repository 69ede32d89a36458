"""Run the demokit command line from a checkout: ``python cli.py --help``.

The same Typer app as the ``demokit`` console script.
"""

import sys

from demokit.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
