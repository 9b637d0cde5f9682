"""`python -m dltemplate`: the command line, as the `dltemplate` command."""

import sys

from dltemplate.cli import main

sys.exit(main())
