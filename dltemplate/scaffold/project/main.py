"""The template's command line; see `python main.py --help`."""

import sys

from dltemplate.cli import main

if __name__ == "__main__":
    sys.exit(main())
