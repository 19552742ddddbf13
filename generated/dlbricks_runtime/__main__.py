"""`python -m dlbricks_runtime [run|check|tune|pack] [options]`: the suite runner."""

import sys

from .runner import main

sys.exit(main())
