"""``python -m journeymodel`` runs the command line."""

import sys

from journeymodel.cli.app import main

sys.exit(main())
