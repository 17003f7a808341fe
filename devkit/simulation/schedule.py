"""Replays verification lifecycles through the real scheduling code and prints, per policy,
detection delay (mean / p95 / p99, and for the first change), requests per verification, the
longest gap between polls per status, and where each policy sits against the fixed-interval
curve at equal requests; beside them, the knapsack bound and the exact optimum.

Not a test: it asserts nothing, it measures (the goal lines say PASS or FAIL, per distribution
and seed). Pure Python, no servers, under a minute:
    .venv/bin/python scripts/simulate_schedule.py [--verifications 3000] [--seeds 3]
        [--rounds 2] [--training 10000] [--lifecycle NAME=USER/REVIEW[/GAP] ...]
        [--hint-delivery 1,0.9,0.5,0] [--hint-delay 2] [--hint-loss 0] [--hints-only]
        [--oracle-users]

Webhooks as hints (`devkit.simulation.hints`): per distribution, the static plan with a hint
per change at each delivery share, the adapting safety net's stretch (the product's rule),
detection delay and requests beside polling alone, and the safety net's p99.

Lifecycles (`devkit.simulation.lifecycles`): A = users 2-20 min, reviews 1-24 h; B = users
2-20 min, reviews 5-60 min (reviews capped at 10 min gaps); C = log-normal users (median
5 min) and reviews (median 2 h, a tail of days). Policies, each through the code the worker
runs:
- today: `worker.domain.backoff.next_poll_time` with `BackoffSettings()` (full jitter, base 5 s,
  cap 900 s), attempt = polls since the last change, as `worker.domain.decisions` does;
- fixed N s: a poll every N s from tracking (closed form);
- static: `worker.domain.schedule.next_poll_delay` with `DEFAULT_PLAN` (its review gap the
  distribution's, as `KYC_POLL_MAX_GAP_IN_REVIEW` would set it);
- adaptive: `worker.domain.adaptive.adaptive_plan`, learned in `--rounds` rounds, each from
  the seeing times a fresh training sample of `--training` verifications (same distribution,
  other seeds) showed under the previous round's plan (the static one first), as the
  transition history would; with `--oracle-users` also learned with the users' true
  distribution in place of its estimate (what knowing where users finish, below the first
  poll, is worth: the history cannot show it);
- optimum: the exact optimum (`devkit.simulation.optimum`), replayed on the first seed's
  lifecycles: each verification draws one of the mixture's placements. It sits exactly on
  the p95's edge (10 % of decisions later than its window), so a sample's p95 may land
  either side of it; without a cap it leaves decisions waiting for hours (its p99), so the
  product's goal is set against the capped one.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from devkit.simulation import bound as knapsack
from devkit.simulation.hints import hint_rows
from devkit.simulation.lifecycles import (
    DEFAULT_DISTRIBUTIONS,
    Distribution,
    Lifecycle,
    draw_lifecycles,
    parse_lifecycle,
)
from devkit.simulation.optimum import Optimum, OptimumPolicy, exact_optimum, span_changes
from devkit.simulation.replay import (
    PROVIDER,
    Policy,
    Result,
    equal_requests_p95,
    fixed_interval,
    new_history,
    plan_policy,
    simulate,
    today_policy,
)
from worker.domain.adaptive import AdaptiveSettings, DurationHistory, adaptive_plan
from worker.domain.backoff import BackoffSettings
from worker.domain.placement import ChangeTimes
from worker.domain.safety_net import SafetyNetSettings
from worker.domain.schedule import DEFAULT_PLAN, SchedulePlan, render_markdown_table
from worker.domain.statuses import VerificationStatus

FIXED_INTERVALS = (60.0, 300.0, 600.0)
GOAL_FIRST_CHANGE_P95 = 60.0
BOUND_BUDGET_STEPS = 4  # budgets from 60 % to all of it
OPTIMUM_MARGIN = 1.10  # adaptive within 10 % of the exact optimum (capped)
PENDING, IN_REVIEW = VerificationStatus.PENDING, VerificationStatus.IN_REVIEW
TODAY = "today (full jitter 5..900 s)"
STATIC = "static (the default)"
ADAPTIVE = "adaptive (learned)"
ORACLE_USERS = "adaptive, users known (oracle)"


@dataclass(frozen=True)
class Goals:
    """p95 ratios (to a fixed interval at equal requests) a distribution's policies must meet;
    None: only printed. `near_optimum`: adaptive within OPTIMUM_MARGIN of the capped optimum."""

    adaptive: float | None = None
    static: float | None = None
    near_optimum: bool = False


GOALS = {"A": Goals(0.90, 1.05), "B": Goals(1.15, 1.5), "C": Goals(near_optimum=True)}


@dataclass
class Row:
    """One policy on one distribution: every seed's result, and all of them together."""

    name: str
    seeds: list[Result] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # per seed, against that seed's curve
    total: Result = field(default_factory=Result)
    equal_interval: float = math.nan
    equal_p95: float = math.nan

    @property
    def ratio(self) -> float:
        return self.total.p95 / self.equal_p95


@dataclass(frozen=True)
class Bound:
    """No schedule spending at most `requests` has a p95 below `p95`."""

    requests: float
    p95: float
    equal_p95: float  # the fixed interval's p95 at those requests

    @property
    def ratio(self) -> float:
        return self.p95 / self.equal_p95


@dataclass(frozen=True)
class Report:
    distribution: Distribution
    rows: dict[str, Row]
    bound: Bound | None
    optimum: Optimum | None
    capped: Optimum | None
    optimum_seconds: float
    curve_p95: float  # the fixed interval's p95 at today's requests (a large sample)


def static_plan(distribution: Distribution) -> SchedulePlan:
    """The default plan with the distribution's review gap (KYC_POLL_MAX_GAP_IN_REVIEW)."""
    return DEFAULT_PLAN.with_max_gaps({IN_REVIEW: distribution.review_gap})


def learn(
    distribution: Distribution,
    count: int,
    seed: int,
    static: SchedulePlan,
    settings: AdaptiveSettings,
    rounds: int,
    known: Mapping[tuple[str, VerificationStatus], ChangeTimes] | None = None,
) -> SchedulePlan:
    """Adaptive's plan after `rounds` builds, each from a training sample polled with the
    plan in force (the static one first), read as the transition history would record it
    (`known`: statuses whose changes the learner is told instead, see `adaptive_plan`)."""
    plan = static
    for round_ in range(rounds):
        history = new_history()
        training = draw_lifecycles(distribution, count, 10_000 + 100 * seed + round_)
        simulate(training, plan_policy(plan), random.Random(seed + round_), history)
        histories = {key: DurationHistory(values) for key, values in history.items()}
        plan = adaptive_plan(static, histories, settings, in_force=plan, known=known)
    return plan


@dataclass(frozen=True)
class SeedTask:
    """One distribution and seed: what a worker process replays."""

    distribution: Distribution
    seed: int
    count: int
    settings: AdaptiveSettings
    rounds: int
    training: int
    oracle_users: bool = False


@dataclass(frozen=True)
class SeedOutcome:
    results: dict[str, Result]
    ratios: dict[str, float]  # against this seed's own fixed-interval curve


def run_seed(task: SeedTask) -> SeedOutcome:
    """Today's, the fixed intervals', the static and the learned policies on one seed."""
    distribution, seed = task.distribution, task.seed
    static = static_plan(distribution)
    lifecycles = draw_lifecycles(distribution, task.count, seed)
    rng = random.Random(1_000 + seed)
    results: dict[str, Result] = {}
    results[TODAY] = simulate(lifecycles, _today(), rng)
    for interval in FIXED_INTERVALS:
        results[f"fixed {interval:g} s"] = fixed_interval(lifecycles, interval)
    results[STATIC] = simulate(lifecycles, plan_policy(static), rng)
    plan = learn(distribution, task.training, seed, static, task.settings, task.rounds)
    results[ADAPTIVE] = simulate(lifecycles, plan_policy(plan), rng)
    if task.oracle_users:
        known = {(PROVIDER, PENDING): span_changes(distribution.user)}
        told = learn(distribution, task.training, seed, static, task.settings, task.rounds, known)
        results[ORACLE_USERS] = simulate(lifecycles, plan_policy(told), rng)
    ratios = {
        name: result.p95 / equal_requests_p95(lifecycles, result.mean_requests)[1]
        for name, result in results.items()
    }
    return SeedOutcome(results, ratios)


def evaluate(distribution: Distribution, count: int, outcomes: Sequence[SeedOutcome]) -> Report:
    """The seeds' outcomes together, the exact optimum (replayed on the first seed), the
    knapsack bound, and the fixed-interval curve at today's requests."""
    samples = [draw_lifecycles(distribution, count, seed) for seed in range(len(outcomes))]
    rows: dict[str, Row] = {}
    for outcome in outcomes:
        for name, result in outcome.results.items():
            row = rows.setdefault(name, Row(name))
            row.seeds.append(result)
            row.ratios.append(outcome.ratios[name])
            row.total.extend(result)
    budget = rows[TODAY].total.mean_requests
    started = time.monotonic()
    optimum = exact_optimum(distribution, budget)
    capped = exact_optimum(distribution, budget, max_gap=distribution.review_gap)
    optimum_seconds = (time.monotonic() - started) / 2
    for name, found in (("optimum, no cap", optimum), ("optimum, review gap cap", capped)):
        if found is not None:  # replayed on the first seed's lifecycles: a check, not a goal
            result = simulate(samples[0], OptimumPolicy(found), random.Random(0))
            row = rows.setdefault(f"{name} (exact)", Row(f"{name} (exact)"))
            row.seeds.append(result)
            row.ratios.append(result.p95 / equal_requests_p95(samples[0], result.mean_requests)[1])
            row.total.extend(result)
    everything = [lifecycle for sample in samples for lifecycle in sample]
    for row in rows.values():
        row.equal_interval, row.equal_p95 = equal_requests_p95(everything, row.total.mean_requests)
    curve = draw_lifecycles(distribution, 10_000, 30_000)
    bound = p95_bound(distribution, curve, budget)
    curve_p95 = equal_requests_p95(curve, budget)[1]
    return Report(distribution, rows, bound, optimum, capped, optimum_seconds, curve_p95)


def run_all(tasks: Sequence[SeedTask], jobs: int) -> list[SeedOutcome]:
    """Every seed task, in `jobs` processes (1: here)."""
    if jobs <= 1:
        return [run_seed(task) for task in tasks]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_seed, tasks))


def _today() -> Policy:
    return today_policy(BackoffSettings())


def p95_bound(
    distribution: Distribution, lifecycles: Sequence[Lifecycle], budget: float
) -> Bound | None:
    """The lowest p95 ratio the knapsack bound allows within `budget` requests and with a
    first-change p95 within the goal (None if the budget cannot even do that). A schedule
    spending less is held to a fixed interval spending less, so budgets from 60 % to all
    of it are tried (in practice the ratio only falls as the budget grows)."""
    best: Bound | None = None
    for step in range(BOUND_BUDGET_STEPS + 1):
        requests = budget * (0.6 + 0.4 * step / BOUND_BUDGET_STEPS)
        p95 = knapsack.smallest_p95(
            distribution.user, distribution.review, requests, GOAL_FIRST_CHANGE_P95
        )
        if not math.isfinite(p95):
            continue
        candidate = Bound(requests, p95, equal_requests_p95(lifecycles, requests)[1])
        if best is None or candidate.ratio < best.ratio:
            best = candidate
    return best


# -- printing -------------------------------------------------------------------------------


def print_table(report: Report) -> None:
    cap = report.distribution.review_gap
    header = (
        f"{'policy':<34} {'mean':>6} {'p95':>6} {'p99':>7} {'1st p95':>8} {'req/verif':>10} "
        f"{'fixed@req':>10} {'its p95':>8} {'ratio':>6} {'gap: user':>10} {'review':>7} "
        f"{'>cap':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in report.rows.values():
        result = row.total
        late = sum(1 for d in result.decision_delays if d > cap) / len(result.decision_delays)
        print(
            f"{row.name:<34} {result.mean_delay:>5.0f}s {result.p95:>5.0f}s {result.p99:>6.0f}s "
            f"{result.first_change_p95:>7.0f}s {result.mean_requests:>10.1f} "
            f"{row.equal_interval:>9.0f}s {row.equal_p95:>7.0f}s {row.ratio:>5.2f}x "
            f"{_span(result.longest_gap(PENDING)):>10} {_span(result.longest_gap(IN_REVIEW)):>7} "
            f"{late:>6.1%}"
        )
    print(
        "  delay: provider change -> first poll after it, over all changes (p99: the tail a p95\n"
        "  does not see); 1st: the first change (the user finishing) only. fixed@req: the fixed\n"
        "  interval spending the same requests on these lifecycles, and its p95; ratio: the\n"
        "  policy's p95 / that p95. gap: the longest wait between two polls in pending and in\n"
        f"  review; >cap: decisions seen more than the review gap cap ({_span(cap)}) late.\n"
    )


def bound_lines(report: Report) -> list[str]:
    """The knapsack bound and the exact optimum, both within today's requests."""
    today = report.rows[TODAY].total.mean_requests
    lines = [
        f"  Within today's {today:.1f} requests and a first-change p95 <= "
        f"{GOAL_FIRST_CHANGE_P95:.0f} s (fixed interval's p95 at those requests: "
        f"{report.curve_p95:.0f} s):"
    ]
    if report.bound is None:
        lines.append("  bound: no schedule meets the first-change goal within today's requests")
    else:
        lines.append(
            f"  knapsack bound: no schedule has a p95 below {report.bound.p95:.0f} s, "
            f"{report.bound.ratio:.3f}x (proof: devkit/simulation/bound.py)"
        )
    for label, found in (("exact optimum", report.optimum), ("with the gap cap", report.capped)):
        if found is None:
            lines.append(f"  {label}: none within today's requests")
            continue
        lines.append(
            f"  {label}: p95 {found.window:.0f} s, {found.window / report.curve_p95:.3f}x "
            f"({found.requests:.1f} requests; users polled from "
            f"{_span(found.user.upper.polls[0])}-{_span(found.user.lower.polls[0])}, reviews "
            f"from {_span(found.review.upper.polls[0])}; user changes later than it: "
            f"{found.user_late:.1%}; review gaps <= {_span(found.max_gap)})"
        )
    lines.append(
        f"  (computed from the distribution in {report.optimum_seconds:.1f} s each; the issue's "
        "independent search: A 0.845x / 0.863x, B 1.049x / 1.054x)"
    )
    if ORACLE_USERS in report.rows:
        told, learned = report.rows[ORACLE_USERS], report.rows[ADAPTIVE]
        lines.append(
            "  adaptive per seed, learned / users known: "
            + ", ".join(
                f"{mine:.3f}x / {oracle:.3f}x ({a.mean_requests:.1f} / {b.mean_requests:.1f} req.)"
                for mine, oracle, a, b in zip(
                    learned.ratios, told.ratios, learned.seeds, told.seeds, strict=True
                )
            )
        )
    return lines


def goal_lines(report: Report, seeds: int) -> list[tuple[bool, str]]:
    name = report.distribution.name
    goals = GOALS.get(name, Goals(near_optimum=True))
    rows = report.rows
    today, static, adaptive = rows[TODAY], rows[STATIC], rows[ADAPTIVE]
    cap = report.distribution.review_gap
    capped_ratio = math.inf if report.capped is None else report.capped.window / report.curve_p95
    checks: list[tuple[bool, str]] = []
    for seed in range(seeds):
        tag = f"[{name} seed {seed}]"
        budget = today.seeds[seed].mean_requests
        for row in (static, adaptive):
            result = row.seeds[seed]
            label = row.name.split(" ")[0]
            checks.append(
                (
                    result.first_change_p95 <= GOAL_FIRST_CHANGE_P95
                    and result.mean_requests <= budget,
                    f"{tag} {label}: first-change p95 {result.first_change_p95:.0f} s <= "
                    f"{GOAL_FIRST_CHANGE_P95:.0f} s, {result.mean_requests:.1f} <= today's "
                    f"{budget:.1f} requests",
                )
            )
        result, ratio = adaptive.seeds[seed], adaptive.ratios[seed]
        gap = result.longest_gap(IN_REVIEW)
        if goals.adaptive is not None:
            checks.append(
                (
                    ratio <= goals.adaptive and gap <= cap,
                    f"{tag} adaptive: p95 {result.p95:.0f} s = {ratio:.3f}x <= {goals.adaptive}x "
                    f"a fixed interval's, longest review gap {_span(gap)} <= {_span(cap)} "
                    f"(p99 {result.p99:.0f} s; the capped optimum {capped_ratio:.3f}x)",
                )
            )
        if goals.near_optimum:
            checks.append(
                (
                    ratio <= OPTIMUM_MARGIN * capped_ratio and gap <= cap,
                    f"{tag} adaptive: {ratio:.3f}x <= {OPTIMUM_MARGIN:g} x the capped optimum's "
                    f"{capped_ratio:.3f}x (+{ratio / capped_ratio - 1:.1%}), longest review gap "
                    f"{_span(gap)} <= {_span(cap)} (p99 {result.p99:.0f} s)",
                )
            )
        if goals.static is not None:
            ratio = static.ratios[seed]
            checks.append(
                (
                    ratio <= goals.static,
                    f"{tag} static: p95 {static.seeds[seed].p95:.0f} s = {ratio:.3f}x <= "
                    f"{goals.static}x a fixed interval's (p99 {static.seeds[seed].p99:.0f} s)",
                )
            )
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--verifications", type=int, default=3000, help="per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="adaptive's learning rounds")
    parser.add_argument(
        "--training", type=int, default=10_000, help="verifications per learning round"
    )
    parser.add_argument(
        "--lifecycle",
        action="append",
        type=parse_lifecycle,
        metavar="NAME=USER/REVIEW[/GAP]",
        help="a distribution such as B=2m-20m/5m-60m/10m (repeatable; default: A, B and C)",
    )
    parser.add_argument("--min-samples", type=int, default=AdaptiveSettings().min_samples)
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes (1: none)"
    )
    parser.add_argument("--show-plan", action="store_true", help="print the default plan table")
    parser.add_argument(
        "--hint-delivery",
        type=_shares,
        default=(1.0, 0.9, 0.5, 0.0),
        help="shares of changes a webhook announces, comma-separated (default 1,0.9,0.5,0)",
    )
    parser.add_argument(
        "--hint-delay", type=float, default=2.0, help="a hint's mean delay after its change (s)"
    )
    parser.add_argument(
        "--hint-loss",
        type=float,
        default=0.0,
        help="share of the verifications, at the end of the run, whose hints are all lost",
    )
    parser.add_argument("--hints-only", action="store_true", help="only the hints tables")
    parser.add_argument(
        "--oracle-users",
        action="store_true",
        help="also learn with the users' true distribution (not a policy: a diagnostic)",
    )
    args = parser.parse_args(argv)
    if args.verifications < 1 or args.seeds < 1 or args.rounds < 1:
        parser.error("--verifications, --seeds and --rounds must be at least 1")
    if not (args.hint_delay > 0 and math.isfinite(args.hint_delay)):
        parser.error("--hint-delay must be a positive number of seconds")
    if not 0.0 <= args.hint_loss <= 1.0:
        parser.error("--hint-loss must be a share in [0, 1]")
    distributions = args.lifecycle or list(DEFAULT_DISTRIBUTIONS)
    settings = AdaptiveSettings(min_samples=args.min_samples)
    started = time.monotonic()
    if args.show_plan:
        print(render_markdown_table(DEFAULT_PLAN), end="\n\n")
    tasks = [
        SeedTask(
            distribution,
            seed,
            args.verifications,
            settings,
            args.rounds,
            args.training,
            args.oracle_users,
        )
        for distribution in distributions
        for seed in range(args.seeds)
    ]
    checks: list[tuple[bool, str]] = []
    outcomes = [] if args.hints_only else run_all(tasks, args.jobs)
    for distribution in distributions if args.hints_only else ():
        checks += print_hints(distribution, args)
    for index, distribution in enumerate(() if args.hints_only else distributions):
        print(
            f"Distribution {distribution.name}: {distribution.describe()}; review gap cap "
            f"{_span(distribution.review_gap)}; {args.verifications} verifications x "
            f"{args.seeds} seeds"
        )
        mine = outcomes[index * args.seeds : (index + 1) * args.seeds]
        report = evaluate(distribution, args.verifications, mine)
        print_table(report)
        print("\n".join(bound_lines(report)), end="\n\n")
        checks += goal_lines(report, args.seeds)
        checks += print_hints(distribution, args)
    print("Goals")
    for passed, text in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")
    print(f"\n({time.monotonic() - started:.1f} s)")
    return 0


HINTED_REQUESTS_GOAL = 0.30  # issue 16: at 100 % delivery, <= 30 % of polling alone


def print_hints(distribution: Distribution, args: argparse.Namespace) -> list[tuple[bool, str]]:
    """Hints at each delivery share beside polling alone (first seed); the goal lines."""
    plan, net_settings = static_plan(distribution), SafetyNetSettings()
    lifecycles = draw_lifecycles(distribution, args.verifications, 0)
    alone, net, rows = hint_rows(
        lifecycles,
        plan,
        net_settings,
        args.hint_delivery,
        args.hint_delay,
        args.hint_loss,
        seed=0,
    )
    print(
        f"Hints on {distribution.name}: a webhook per change with the share delivered, mean "
        f"delay {args.hint_delay:g} s, lost for the last {args.hint_loss:.0%} of the "
        f"verifications; the net stretches x{net_settings.factor:g} at a hinted share >= "
        f"{net_settings.share:g} (KYC_HINT_*), never past the max gap"
    )
    header = (
        f"{'run':<30} {'stretched':>9} {'requests':>9} {'vs alone':>8} {'mean s':>8} "
        f"{'p95 s':>8} {'p99 s':>8} {'net p99 s':>9}"
    )
    print(header)
    print("-" * len(header))
    base = alone.result.mean_requests
    for row in (alone, net, *rows):
        found = row.result
        lost = found.lost_p99 if row is not net else found.p99
        print(
            f"{row.label:<30} {found.stretched_verifications / len(lifecycles):>9.0%} "
            f"{found.mean_requests:>9.1f} {found.mean_requests / base:>8.0%} "
            f"{found.mean_delay:>8.0f} {found.p95:>8.0f} {found.p99:>8.0f} "
            f"{'-' if lost != lost else f'{lost:.0f}':>9}"
        )
    print(
        "  net p99: the p99 delay of changes whose hint was lost (for 'net alone': of every\n"
        "  change). A hinted run's polls are a polling schedule whose delays are its net's, so\n"
        "  at the same net p99 no hinted run spends fewer requests than 'net alone' (less the\n"
        "  hint polls): 30 % of polling alone *at polling alone's p99* cannot be reached.\n"
    )
    checks: list[tuple[bool, str]] = []
    by_share = {share: row.result for share, row in zip(args.hint_delivery, rows, strict=True)}
    if 1.0 in by_share:
        full = by_share[1.0]
        ratio = full.mean_requests / base
        checks.append(
            (
                ratio <= HINTED_REQUESTS_GOAL,
                f"{distribution.name}: hints 100 %: requests {full.mean_requests:.1f} = "
                f"{ratio:.0%} of polling alone's {base:.1f} (<= 30 %), p99 {full.p99:.0f} s, "
                f"net p99 {net.result.p99:.0f} s (polling alone's p99 {alone.result.p99:.0f} s)",
            )
        )
        same = full.mean_requests / net.result.mean_requests
        checks.append(
            (
                same <= HINTED_REQUESTS_GOAL,
                f"{distribution.name}: hints 100 % vs polling alone at the same net p99 "
                f"({net.result.p99:.0f} s: the net alone): {same:.0%} (<= 30 %; impossible, "
                "see above)",
            )
        )
    if 0.0 in by_share:
        none = by_share[0.0]
        checks.append(
            (
                none.mean_requests <= base * 1.0001 and none.p99 <= alone.result.p99 + 1e-6,
                f"{distribution.name}: hints 0 %: requests {none.mean_requests:.1f}, p99 "
                f"{none.p99:.0f} s vs polling alone {base:.1f}, {alone.result.p99:.0f} s "
                "(no worse)",
            )
        )
    return checks


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of shares: {text!r}") from None
    if not shares or any(not 0.0 <= share <= 1.0 for share in shares):
        raise argparse.ArgumentTypeError("each share must be in [0, 1]")
    return shares


def _span(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "none"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


if __name__ == "__main__":
    sys.exit(main())
