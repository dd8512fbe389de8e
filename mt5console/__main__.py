"""``python -m mt5console`` (``py -m mt5console`` on Windows): the same as the ``mt5console`` command.

The fallback when pip's Scripts folder, where the ``mt5console`` launcher goes, is not on PATH.
"""

import sys

from mt5console.cli import main

if __name__ == "__main__":
    sys.exit(main())
