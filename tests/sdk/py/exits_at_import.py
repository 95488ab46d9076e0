"""Calls sys.exit(3) at import: an init failure too (INIT_ERROR SystemExit)."""

import sys

sys.exit(3)
