"""The schedule simulator, as importable modules (`scripts/simulate_schedule.py` and
`scripts/schedule_bound.py` are thin wrappers around their `main`).

- `lifecycles`: the distributions a verification's two changes are drawn from;
- `replay`: lifecycles polled through the real scheduling code, policy by policy;
- `bound`: the knapsack lower bound on the p95 any schedule can reach (a proof);
- `optimum`: the exact optimum under the same constraints (and under a gap cap), computed
  with the product's own placement optimiser on the true distribution, mixtures allowed;
- `schedule`: the simulator's report, its goals and their PASS/FAIL lines.

They print figures and assert nothing.
"""
