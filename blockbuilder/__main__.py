"""``python -m blockbuilder`` runs the command line."""

import sys

from blockbuilder.cli import main

sys.exit(main())
