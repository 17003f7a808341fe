#!/usr/bin/env python3
"""The real-pipeline benchmark (devkit/bench/fleet.py): `--help` says what it measures."""

import sys

from devkit.bench.fleet import main

if __name__ == "__main__":
    sys.exit(main())
