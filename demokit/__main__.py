"""``python -m demokit ...`` (and ``torchrun ... -m demokit bc-train ...``): the command line."""

import sys

from demokit.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
