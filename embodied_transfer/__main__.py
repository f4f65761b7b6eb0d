"""``python -m embodied_transfer``: the same as the ``embodied-transfer`` command."""
import sys

from embodied_transfer.app.cli import main

sys.exit(main())
