"""``python -m blockbuilder`` runs the command line."""

import sys

from blockbuilder.cli.main import main

sys.exit(main())
