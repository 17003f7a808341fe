#!/usr/bin/env python3
"""The webhook benchmark (devkit/bench/webhooks.py): `--help` says what it measures."""

import sys

from devkit.bench.webhooks import main

if __name__ == "__main__":
    sys.exit(main())
