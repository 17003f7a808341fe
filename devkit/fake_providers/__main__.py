"""`python -m fake_providers`: the same as the `kyc-fake-providers` console script."""

import sys

from devkit.fake_providers.server import main

sys.exit(main())
