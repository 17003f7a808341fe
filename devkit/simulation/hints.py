"""Provider webhooks as hints, beside polling alone (issue 16, item 6).

Each lifecycle is polled as `replay.simulate` does (the static plan, through
`worker.domain.schedule.next_poll_delay`), and each of its changes is announced by a hint
with probability `delivery`, arriving `delay` after it (exponential, mean `delay_mean`);
a hint is a poll at its arrival (the poll-now path), unless a poll saw the change first.
The waits stretch by the product's rule (`worker.domain.safety_net.assess`) on a record of
the transitions found so far, in the order the verifications are replayed: a steady state
in which the hinted share is what the window sees. (The silence rule needs a shared clock
across verifications, which this replay has not: it is tested in the unit tests.)

`outage`: the last share of the verifications get no hint at all (the hints stop): the
record fills with unhinted transitions and the schedule returns to normal; their delays
are what the safety net gives while that happens.

Figures per run: detection delay (mean / p95 / p99) of every change, requests per
verification, and the **safety-net p99**: the p99 delay of the changes whose hint was lost
(with no loss: of the same stretched waits without any hint, replayed apart), which is
what a subscriber waits when a hint does not come.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from devkit.simulation.lifecycles import Lifecycle
from devkit.simulation.replay import PROVIDER, Result, percentile
from worker.domain.safety_net import HintRecord, SafetyNetSettings, assess
from worker.domain.schedule import SchedulePlan, next_poll_delay


@dataclass
class HintedResult(Result):
    """`Result`'s delays and requests, and what hints add: the delays of the changes whose
    hint was lost, and how many verifications were polled with stretched waits."""

    lost_delays: list[float] = field(default_factory=list)
    stretched_verifications: int = 0

    @property
    def lost_p99(self) -> float:
        return percentile(self.lost_delays, 0.99)


def simulate_hinted(
    lifecycles: Sequence[Lifecycle],
    plan: SchedulePlan,
    settings: SafetyNetSettings,
    rng: random.Random,
    *,
    delivery: float,
    delay_mean: float,
    outage: float = 0.0,
    force_stretch: float | None = None,
) -> HintedResult:
    """Replay `lifecycles` with hints (see the module docstring). `force_stretch`: every
    verification's waits stretched by it, whatever the record says (the net alone)."""
    result = HintedResult()
    recent: list[bool] = []  # newest first, as the fleet's record
    hintless_from = len(lifecycles) - round(outage * len(lifecycles))
    for index, lifecycle in enumerate(lifecycles):
        if force_stretch is not None:
            factor = force_stretch
        else:
            state = assess(HintRecord(recent=tuple(recent)), settings)
            factor = state.factor(settings)
        result.stretched_verifications += factor > 1.0
        sends = delivery if index < hintless_from else 0.0
        hints = [
            changed_at + rng.expovariate(1.0 / delay_mean) if rng.random() < sends else None
            for changed_at, _ in lifecycle[1:]
        ]
        now, known, since, upcoming, requests = 0.0, lifecycle[0][1], 0.0, 1, 0
        while True:
            requests += 1
            actual = known
            while upcoming < len(lifecycle) and lifecycle[upcoming][0] <= now:
                changed_at, actual = lifecycle[upcoming]
                hint = hints[upcoming - 1]
                result.delays.append(now - changed_at)
                if hint is None:
                    result.lost_delays.append(now - changed_at)
                recent.insert(0, hint is not None)
                upcoming += 1
            del recent[settings.window :]
            if actual != known:
                known, since = actual, now
                if known.is_terminal:
                    break
            wait = next_poll_delay(plan, PROVIDER, known, now - since, rng, factor)
            next_poll = now + wait
            hint = hints[upcoming - 1] if upcoming < len(lifecycle) else None
            now = min(next_poll, hint) if hint is not None and hint > now else next_poll
        result.requests.append(requests)
    return result


@dataclass(frozen=True)
class HintRow:
    label: str
    result: HintedResult


def hint_rows(
    lifecycles: Sequence[Lifecycle],
    plan: SchedulePlan,
    settings: SafetyNetSettings,
    deliveries: Sequence[float],
    delay_mean: float,
    outage: float,
    seed: int,
) -> tuple[HintRow, HintRow, list[HintRow]]:
    """Polling alone, the stretched net alone (no hint), and one row per delivery share."""
    alone = simulate_hinted(
        lifecycles, plan, settings, random.Random(seed), delivery=0.0, delay_mean=delay_mean
    )
    net = simulate_hinted(
        lifecycles,
        plan,
        settings,
        random.Random(seed),
        delivery=0.0,
        delay_mean=delay_mean,
        force_stretch=settings.factor,
    )
    rows = []
    for share in deliveries:
        found = simulate_hinted(
            lifecycles,
            plan,
            settings,
            random.Random(seed),
            delivery=share,
            delay_mean=delay_mean,
            outage=outage,
        )
        rows.append(HintRow(f"hints {share:.0%} delivered", found))
    return (
        HintRow("polling alone (static)", alone),
        HintRow(f"net alone, stretched x{settings.factor:g}", net),
        rows,
    )
