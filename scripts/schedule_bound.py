#!/usr/bin/env python3
"""The knapsack lower bound on the p95 (devkit/simulation/bound.py): its proof is there."""

import sys

from devkit.simulation.bound import main

if __name__ == "__main__":
    sys.exit(main())
