#!/usr/bin/env python3
"""The sweep benchmark (devkit/bench/sweep.py): `--help` says what it measures."""

import sys

from devkit.bench.sweep import main

if __name__ == "__main__":
    sys.exit(main())
