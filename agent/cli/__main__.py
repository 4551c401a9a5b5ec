"""`python -m agent.cli`: the same as `relay-agent`."""

import sys

from agent.cli import main

sys.exit(main())
