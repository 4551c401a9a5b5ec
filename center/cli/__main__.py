"""`python -m center.cli`: the same as `relay-center`."""

import sys

from center.cli import main

sys.exit(main())
