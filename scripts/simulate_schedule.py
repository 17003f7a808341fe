#!/usr/bin/env python3
"""The schedule simulator (devkit/simulation/schedule.py): `--help` says what it measures."""

import sys

from devkit.simulation.schedule import main

if __name__ == "__main__":
    sys.exit(main())
