"""``python -m benchmarks`` is ``fast-shoot bench``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
