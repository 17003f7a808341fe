"""`python -m worker.entrypoints.cli`: the same as `kyc-poller`."""

import sys

from worker.entrypoints.cli import main

sys.exit(main())
