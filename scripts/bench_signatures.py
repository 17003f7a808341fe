#!/usr/bin/env python3
"""Event signing and verification cost (devkit/bench/signatures.py): `--help` says what."""

import sys

from devkit.bench.signatures import main

if __name__ == "__main__":
    sys.exit(main())
