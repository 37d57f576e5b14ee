"""``python -m hullwatch.tools.cli`` runs the ``hullwatch`` command."""
import sys

from . import main

sys.exit(main())
