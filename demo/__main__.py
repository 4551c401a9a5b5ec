"""`python -m demo`: the same as `relay-demo`, for a virtualenv that is not on PATH."""

import sys

from demo.run import main

if __name__ == "__main__":
    sys.exit(main())
