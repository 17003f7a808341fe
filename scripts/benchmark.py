#!/usr/bin/env python3
"""The hot paths, timed in one process (devkit/bench/hot_paths.py)."""

import sys

from devkit.bench.hot_paths import main

if __name__ == "__main__":
    sys.exit(main())
