"""`python -m agent`: the same entry point as the `suanli-agent` console script."""

import sys

from agent.cli import main

sys.exit(main())
