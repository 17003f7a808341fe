"""When to poll next: a status-aware schedule with small, bounded jitter.

The wait before the next poll of a verification depends on what it is doing:
its normalized status, how long it has been in it, and its provider. Each
non-terminal status has a `StatusSchedule`: phases of seconds-in-status, each
with its own interval ("every minute for the first 30 min, then every 2 min to an
hour, ..."); the last phase's interval is the cap. A provider may override any
status. Terminal statuses have no schedule.

Jitter spreads the *first* wait in a status (after the change, or after tracking) over
[1 - `jitter`, 1 + `jitter`] times it (10 % by default), so verifications that changed status
together, or were tracked in one batch, do not poll in lock-step; later waits are the
schedule's own. So only the first gap can differ from the schedule (by the jitter), and a
learned schedule that polls every 60 s to see a change within 60 s keeps that promise (a
±10 % draw on every wait would leave 2.5 % of its changes waiting longer). On average the
first wait is the nominal one, so jitter costs neither requests nor delay; its spread also
tells the learner where in the first gap changes land (`worker.domain.adaptive`). A phase
that starts a little early or late stays so until a denser phase's start re-anchors it
(`StatusSchedule.nominal_delay`).

A maximum gap per status (`max_gaps`, 30 min by default) caps every wait of that status,
whatever its schedule or a learned one says: no decision waits longer than it to be seen.

Errors keep their own backoff (`worker.domain.backoff`); this module is only for
answered polls: call `next_poll_delay` after an unchanged poll and right after a
status change (with `seconds_in_status=0`).

Configuration (environment, see `plan_from_env`):
- `KYC_POLL_SCHEDULE_<STATUS>` = "0:60,1800:120,3600:300" (seconds-in-status:interval
  pairs, the first at 0, starts strictly increasing, intervals > 0);
- `KYC_POLL_SCHEDULE_<PROVIDER>_<STATUS>` = the same, for one provider;
- `KYC_POLL_SCHEDULE_JITTER` = 0.1 (a fraction in [0, 0.5]);
- `KYC_POLL_MAX_GAP_<STATUS>` = 1800 (seconds, at least 1 and at most 30 days).
(The prefix is not `KYC_SCHEDULE_`: `KYC_SCHEDULE_INTERVAL` is the beat period.)

The defaults are measured by `scripts/simulate_schedule.py` (devkit.simulation) against
today's full jitter, fixed intervals and the exact optimum on the simulator's lifecycles.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from worker.domain.safety_net import stretched_wait
from worker.domain.statuses import VerificationStatus

ENV_PREFIX = "KYC_POLL_SCHEDULE_"
JITTER_VARIABLE = f"{ENV_PREFIX}JITTER"
MAX_GAP_PREFIX = "KYC_POLL_MAX_GAP_"
DEFAULT_JITTER = 0.1
MAX_JITTER = 0.5
# No status waits longer than this between two polls unless configured otherwise.
DEFAULT_MAX_GAP_SECONDS = 1800.0
# The widest cap accepted (a larger one is a typo: the default maximum age is 30 days).
MAX_GAP_CEILING_SECONDS = 30 * 86400.0
# No poll is ever scheduled sooner than this, whatever the configuration says.
MIN_DELAY_SECONDS = 1.0


class ScheduleConfigError(ValueError):
    """A schedule setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class Phase:
    """From `start` seconds in the status on, poll every `interval` seconds."""

    start: float
    interval: float


@dataclass(frozen=True)
class StatusSchedule:
    """The phases of one status: the first starts at 0, starts strictly increase."""

    phases: tuple[Phase, ...]
    # Derived (not compared, not shown): the phases' starts, for bisect; the first wait.
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False, default=())
    first_wait: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(phase.start for phase in self.phases))
        if not self.phases:
            raise ValueError("a schedule needs at least one phase")
        if self.phases[0].start != 0:
            raise ValueError("the first phase must start at 0 seconds in status")
        previous = -1.0
        for phase in self.phases:
            if not (math.isfinite(phase.start) and phase.start > previous):
                raise ValueError("phase starts must be finite and strictly increasing")
            if not (math.isfinite(phase.interval) and phase.interval > 0):
                raise ValueError("intervals must be finite and greater than 0")
            previous = phase.start
        object.__setattr__(self, "first_wait", self.nominal_delay(0.0))

    @classmethod
    def of(cls, *pairs: tuple[float, float]) -> StatusSchedule:
        """`StatusSchedule.of((0, 55), (1800, 120))`: (start, interval) pairs."""
        return cls(tuple(Phase(float(start), float(interval)) for start, interval in pairs))

    def interval_at(self, seconds_in_status: float) -> float:
        """The nominal interval of the phase `seconds_in_status` falls in."""
        return self.phases[self._phase_index(seconds_in_status)].interval

    def _phase_index(self, seconds_in_status: float) -> int:
        return max(bisect.bisect_right(self._starts, seconds_in_status) - 1, 0)

    def nominal_delay(self, seconds_in_status: float) -> float:
        """The wait (before jitter) from `seconds_in_status` to the next poll.

        The phase's interval, except that a later phase with a shorter interval is
        not overshot: the poll lands on its start, or one of that phase's intervals
        from now if its start is nearer than that (learned schedules leave sparse
        stretches where a change is unlikely, then poll densely where it is likely).
        """
        elapsed = max(seconds_in_status, 0.0)
        index = self._phase_index(elapsed)
        delay = self.phases[index].interval
        for phase in self.phases[index + 1 :]:
            if phase.start <= elapsed:
                continue
            if phase.start >= elapsed + delay:
                break
            if phase.interval < delay:
                delay = max(phase.start - elapsed, phase.interval)
        return delay

    def offsets(self, horizon: float, max_gap: float = math.inf) -> list[float]:
        """Nominal poll times (seconds in status, without jitter) up to the first past
        `horizon`, each wait capped at `max_gap`."""
        times: list[float] = []
        now = 0.0
        while now < horizon:
            now += max(min(self.nominal_delay(now), max_gap), MIN_DELAY_SECONDS)
            times.append(now)
        return times

    def capped(self, max_gap: float) -> StatusSchedule:
        """The same schedule with every interval at most `max_gap`."""
        return StatusSchedule(
            tuple(Phase(phase.start, min(phase.interval, max_gap)) for phase in self.phases)
        )

    def render(self) -> str:
        """The schedule in words: "at 3 min, then every 1 min to 30 min, then every 2 min …"."""
        parts: list[str] = []
        for index, phase in enumerate(self.phases):
            following = self.phases[index + 1].start if index + 1 < len(self.phases) else None
            if following is not None and following - phase.start == phase.interval:
                parts.append(f"at {format_duration(following)}")  # a phase of one poll
                continue
            text = f"every {format_duration(phase.interval)}"
            if following is not None:
                text += f" to {format_duration(following)}"
            parts.append(text)
        return ", then ".join(parts)

    def to_setting(self) -> str:
        """The schedule in the environment format ("0:55,1800:120")."""
        return ",".join(f"{_number(p.start)}:{_number(p.interval)}" for p in self.phases)


@dataclass(frozen=True)
class SchedulePlan:
    """A schedule per non-terminal status, per-provider overrides, the jitter, and the
    longest wait per status (`max_gaps`; a status not listed gets the default)."""

    statuses: Mapping[VerificationStatus, StatusSchedule]
    providers: Mapping[str, Mapping[VerificationStatus, StatusSchedule]] = field(
        default_factory=dict
    )
    jitter: float = DEFAULT_JITTER
    max_gaps: Mapping[VerificationStatus, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 <= self.jitter <= MAX_JITTER):
            raise ValueError(f"jitter must be within [0, {MAX_JITTER}]")
        for status, gap in self.max_gaps.items():
            if status.is_terminal:
                raise ValueError(f"{status.value} is terminal: it has no maximum gap")
            if not (MIN_DELAY_SECONDS <= gap <= MAX_GAP_CEILING_SECONDS):
                raise ValueError(
                    f"the maximum gap of {status.value} must be within "
                    f"[{MIN_DELAY_SECONDS:g}, {MAX_GAP_CEILING_SECONDS:g}] seconds"
                )
        for status in VerificationStatus:
            if not status.is_terminal and status not in self.statuses:
                raise ValueError(f"no schedule for the non-terminal status {status.value}")
        overrides = [s for per in self.providers.values() for s in per]
        for status in [*self.statuses, *overrides]:
            if status.is_terminal:
                raise ValueError(f"{status.value} is terminal: it has no schedule")

    def schedule_for(self, provider: str, status: VerificationStatus) -> StatusSchedule | None:
        """The provider's override, else the default; None for a terminal status."""
        if status.is_terminal:
            return None
        override = self.providers.get(provider.lower(), {}).get(status)
        return override if override is not None else self.statuses[status]

    def max_gap(self, status: VerificationStatus) -> float:
        """The longest wait between two polls of a verification in `status`."""
        return self.max_gaps.get(status, DEFAULT_MAX_GAP_SECONDS)

    def with_overrides(
        self, provider: str, schedules: Mapping[VerificationStatus, StatusSchedule]
    ) -> SchedulePlan:
        """A copy where `provider` uses `schedules` (merged over its current overrides)."""
        providers = {name: dict(per) for name, per in self.providers.items()}
        providers.setdefault(provider.lower(), {}).update(schedules)
        return SchedulePlan(self.statuses, providers, self.jitter, self.max_gaps)

    def with_max_gaps(self, max_gaps: Mapping[VerificationStatus, float]) -> SchedulePlan:
        """A copy with these statuses' maximum gaps (merged over the current ones)."""
        return SchedulePlan(
            self.statuses, self.providers, self.jitter, {**self.max_gaps, **max_gaps}
        )


def next_poll_delay(
    plan: SchedulePlan,
    provider: str,
    status: VerificationStatus,
    seconds_in_status: float,
    rng: random.Random,
    stretch: float = 1.0,
) -> float:
    """Seconds until the next poll of a verification in a non-terminal `status`.

    `seconds_in_status`: since kyc-poller saw the verification enter `status` (its
    last transition, or its tracking for the first status); 0 right after a change.
    The nominal delay (see `StatusSchedule.nominal_delay`); the status's first wait (one
    that starts before its first poll could be due) lands within `first_wait_spread` of the
    first poll's time, uniformly. At most the status's maximum gap, at least
    `MIN_DELAY_SECONDS`. `stretch` > 1: the provider's hints arrive and its safety net is
    coarser (`worker.domain.safety_net`): the delay times it, still at most the maximum gap.
    """
    schedule = plan.schedule_for(provider, status)
    if schedule is None:
        raise ValueError(f"{status.value} is terminal: it is not polled")
    elapsed = max(seconds_in_status, 0.0)
    first, cap = schedule.first_wait, plan.max_gap(status)
    spread = first_wait_spread(first, plan.jitter, cap)
    if spread > 0 and elapsed < first - spread:
        delay = first + rng.uniform(-spread, spread) - elapsed
    else:
        delay = schedule.nominal_delay(elapsed)
    return max(stretched_wait(min(delay, cap), stretch, cap), MIN_DELAY_SECONDS)


def first_wait_spread(first: float, jitter: float, max_gap: float) -> float:
    """How far the first wait may land either side of `first`: `jitter` of it, but never
    past the maximum gap, so the draw stays centred on `first` (a first wait at the cap,
    common for learned reviews, is not jittered: clipping would shorten it on average)."""
    return max(min(jitter * first, max_gap - first), 0.0)


# -- defaults ---------------------------------------------------------------------------

# The user is completing the flow (pending, in_progress) or must resubmit (retry). The
# first poll comes 3 min in (GUESS: no user finishes a flow with a document and a selfie in
# under 2 min; both simulator distributions say so, and one who does waits at most 3 min),
# then every minute to 30 min: no gap over 60 s, so the first change is seen within 60 s.
# Then back off for users who wander away.
USER_SCHEDULE = StatusSchedule.of(
    (0, 180), (180, 60), (1800, 120), (3600, 300), (6 * 3600, 600), (24 * 3600, 1800)
)
# A manual (compliance) review takes minutes to a day. The first poll comes 6 min in, then
# every 230 s to an hour (the short reviews: one of 5-60 min is seen within 4 min), every
# 480 s to 4.5 h, every 30 min (the maximum gap) from 4.5 h to 6.5 h, then every 400 s to a
# day. The sparse block is where the p95 forgives: it allows 10 % of decisions (with one user
# change per decision) to wait longer than it, and spending that allowance on one block of
# long reviews, where each poll is still dear (most reviews are still open), buys a denser
# pace everywhere else. Its price is the tail: a decision in the block waits up to the
# maximum gap (p99 ~22 min on A where a steady pace had ~8 min). Tuned on the simulator (README,
# Benchmark): A within 1.05x and B within 1.5x a fixed interval's p95 at equal requests, both
# within today's requests, C (log-normal) 1.28x. A steady tail instead:
# KYC_POLL_SCHEDULE_IN_REVIEW=0:360,360:220,3600:485,86400:1800 (A 1.13x, p99 ~8 min).
REVIEW_SCHEDULE = StatusSchedule.of(
    (0, 360), (360, 230), (3600, 480), (16200, 1800), (23400, 400), (24 * 3600, 1800)
)

DEFAULT_STATUS_SCHEDULES: Mapping[VerificationStatus, StatusSchedule] = {
    VerificationStatus.PENDING: USER_SCHEDULE,
    VerificationStatus.IN_PROGRESS: USER_SCHEDULE,
    VerificationStatus.RETRY: USER_SCHEDULE,
    VerificationStatus.IN_REVIEW: REVIEW_SCHEDULE,
}
DEFAULT_MAX_GAPS: Mapping[VerificationStatus, float] = {
    status: DEFAULT_MAX_GAP_SECONDS for status in DEFAULT_STATUS_SCHEDULES
}
DEFAULT_PLAN = SchedulePlan(DEFAULT_STATUS_SCHEDULES, max_gaps=DEFAULT_MAX_GAPS)


# -- configuration ----------------------------------------------------------------------


def polled_statuses() -> list[VerificationStatus]:
    return [status for status in VerificationStatus if not status.is_terminal]


def parse_schedule(text: str, *, variable: str) -> StatusSchedule:
    """Parse "0:55,1800:120,3600:300"; errors name `variable`."""
    pairs: list[tuple[float, float]] = []
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ScheduleConfigError(
            f"{variable}: expected comma-separated <seconds-in-status>:<interval> pairs "
            f"such as 0:55,1800:120, got {text!r}"
        )
    for item in items:
        start_text, colon, interval_text = item.partition(":")
        if not colon:
            raise ScheduleConfigError(
                f"{variable}: {item!r} is not a <seconds-in-status>:<interval> pair"
            )
        start = _parse_seconds(start_text, variable=variable, what="start")
        interval = _parse_seconds(interval_text, variable=variable, what="interval")
        if interval <= 0:
            raise ScheduleConfigError(f"{variable}: interval in {item!r} must be greater than 0")
        pairs.append((start, interval))
    if pairs[0][0] != 0:
        raise ScheduleConfigError(f"{variable}: the first pair must start at 0, got {text!r}")
    for (before, _), (after, _) in pairwise(pairs):
        if after <= before:
            raise ScheduleConfigError(
                f"{variable}: starts must strictly increase ({_number(after)} after "
                f"{_number(before)})"
            )
    return StatusSchedule.of(*pairs)


def parse_jitter(text: str, *, variable: str = JITTER_VARIABLE) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ScheduleConfigError(f"{variable}: expected a fraction, got {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= MAX_JITTER):
        raise ScheduleConfigError(f"{variable}: must be within [0, {MAX_JITTER}], got {text!r}")
    return value


def parse_max_gap(text: str, *, variable: str) -> float:
    """Seconds within [MIN_DELAY_SECONDS, MAX_GAP_CEILING_SECONDS]; errors name `variable`."""
    gap = _parse_seconds(text, variable=variable, what="maximum gap")
    if not MIN_DELAY_SECONDS <= gap <= MAX_GAP_CEILING_SECONDS:
        raise ScheduleConfigError(
            f"{variable}: must be within [{MIN_DELAY_SECONDS:g}, {MAX_GAP_CEILING_SECONDS:g}] "
            f"seconds, got {text.strip()[:40]!r}"
        )
    return gap


def plan_from_env(
    environ: Mapping[str, str],
    providers: Collection[str],
    base: SchedulePlan = DEFAULT_PLAN,
) -> SchedulePlan:
    """`base` with every `KYC_POLL_SCHEDULE_*` variable of `environ` applied.

    `KYC_POLL_SCHEDULE_<STATUS>` replaces a status's default,
    `KYC_POLL_SCHEDULE_<PROVIDER>_<STATUS>` sets one provider's (names upper-case:
    `KYC_POLL_SCHEDULE_IN_REVIEW`, `KYC_POLL_SCHEDULE_GU1_IN_REVIEW`),
    `KYC_POLL_SCHEDULE_JITTER` the jitter, `KYC_POLL_MAX_GAP_<STATUS>` a status's maximum
    gap. Any other `KYC_POLL_SCHEDULE_*` or `KYC_POLL_MAX_GAP_*` variable (a typo, a
    terminal status, an unknown provider) is an error naming it.
    """
    by_name = {status.value.upper(): status for status in polled_statuses()}
    terminal = {status.value.upper() for status in VerificationStatus if status.is_terminal}
    known_providers = sorted({p.lower() for p in providers}, key=len, reverse=True)
    statuses = dict(base.statuses)
    overrides = {name: dict(per) for name, per in base.providers.items()}
    jitter = base.jitter
    max_gaps = dict(base.max_gaps)
    for variable in sorted(environ):
        if variable.startswith(MAX_GAP_PREFIX):
            status_name = variable[len(MAX_GAP_PREFIX) :]
            if status_name not in by_name:
                kind = (
                    "a terminal status, it is not polled"
                    if status_name in terminal
                    else (
                        f"unknown status; expected {MAX_GAP_PREFIX}<STATUS> with STATUS one of "
                        f"{', '.join(sorted(by_name))}"
                    )
                )
                raise ScheduleConfigError(f"{variable}: {kind}")
            max_gaps[by_name[status_name]] = parse_max_gap(environ[variable], variable=variable)
            continue
        if not variable.startswith(ENV_PREFIX):
            continue
        value = environ[variable]
        rest = variable[len(ENV_PREFIX) :]
        if variable == JITTER_VARIABLE:
            jitter = parse_jitter(value, variable=variable)
        elif rest in by_name:
            statuses[by_name[rest]] = parse_schedule(value, variable=variable)
        else:
            provider, status_name = _split_provider(rest, known_providers)
            if provider is not None and status_name in by_name:
                schedule = parse_schedule(value, variable=variable)
                overrides.setdefault(provider, {})[by_name[status_name]] = schedule
            elif status_name in terminal:
                raise ScheduleConfigError(
                    f"{variable}: {status_name.lower()} is a terminal status, it is not polled"
                )
            else:
                raise ScheduleConfigError(
                    f"{variable}: unknown setting; expected {ENV_PREFIX}<STATUS> or "
                    f"{ENV_PREFIX}<PROVIDER>_<STATUS> with STATUS one of "
                    f"{', '.join(sorted(by_name))} and PROVIDER one of "
                    f"{', '.join(sorted(p.upper() for p in known_providers)) or '(none)'}, "
                    f"or {JITTER_VARIABLE}"
                )
    return SchedulePlan(statuses, overrides, jitter, max_gaps)


def _split_provider(rest: str, providers: Iterable[str]) -> tuple[str | None, str]:
    for provider in providers:
        prefix = f"{provider.upper()}_"
        if rest.startswith(prefix):
            return provider, rest[len(prefix) :]
    return None, rest


def _parse_seconds(text: str, *, variable: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ScheduleConfigError(
            f"{variable}: {what} {text.strip()!r} is not a number of seconds"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ScheduleConfigError(
            f"{variable}: {what} {text.strip()!r} must be a finite number of seconds >= 0"
        )
    return value


# -- documentation ----------------------------------------------------------------------


def render_markdown_table(plan: SchedulePlan) -> str:
    """The effective plan as a Markdown table (statuses, then each provider override)."""
    lines = [
        "| status | provider | schedule (time in status: interval) | variable | longest gap |",
        "|---|---|---|---|---|",
    ]
    for status in polled_statuses():
        schedule = plan.statuses[status]
        lines.append(
            f"| `{status.value}` | all | {schedule.render()} "
            f"(`{schedule.to_setting()}`) | `{ENV_PREFIX}{status.value.upper()}` | "
            f"{format_duration(plan.max_gap(status))} (`{MAX_GAP_PREFIX}{status.value.upper()}`) |"
        )
    for provider in sorted(plan.providers):
        for status in polled_statuses():
            override = plan.providers[provider].get(status)
            if override is None:
                continue
            lines.append(
                f"| `{status.value}` | {provider} | {override.render()} "
                f"(`{override.to_setting()}`) | "
                f"`{ENV_PREFIX}{provider.upper()}_{status.value.upper()}` | "
                f"{format_duration(plan.max_gap(status))} |"
            )
    lines.append(
        f"\nJitter: the first wait in a status (after the change, or after tracking) is its "
        f"interval times a uniform factor in [{1 - plan.jitter:g}, {1 + plan.jitter:g}] "
        f"(`{JITTER_VARIABLE}`={plan.jitter:g}; narrower where that would pass the longest "
        f"gap); later waits are the schedule's own. No wait is longer than the status's "
        f"longest gap or shorter than {MIN_DELAY_SECONDS:g} s. Terminal statuses are not polled."
    )
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """55 s, 2 min, 1.5 h, 1 d: the largest unit that divides evenly enough."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and (seconds / size) * 10 == round((seconds / size) * 10):
            return f"{_number(seconds / size)} {unit}"
    return f"{_number(seconds)} s"


def _number(value: float) -> str:
    return f"{value:g}"
