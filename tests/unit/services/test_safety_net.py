"""The adapting safety net end to end over the engine: hints arrive -> waits stretch;
hints stop -> the schedule returns to normal by itself, reported once for the fleet."""

from __future__ import annotations

import random

import fakeredis
import pytest
import redis

from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.memory_store import MemoryStore
from worker.domain.decisions import PollPolicy
from worker.domain.safety_net import FoundTransition, SafetyNetSettings
from worker.domain.statuses import VerificationStatus as S
from worker.services.hints import record_hints
from worker.services.polling import PollEngine
from worker.services.safety_net import HintedSafetyNet

SETTINGS = SafetyNetSettings(
    factor=4.0, share=0.8, window=20, min_transitions=10, silence_seconds=600
)


class Switches:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def safety_net_switched(self, provider: str, stretched: bool) -> None:
        self.seen.append((provider, stretched))


@pytest.fixture
def client() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def net(client, clock, hook=None) -> HintedSafetyNet:
    return HintedSafetyNet(
        client,
        SETTINGS,
        ["notus", "gu1"],
        refresh_seconds=0.0,
        clock=lambda: clock().timestamp(),
        on_switch=hook,
    )


def engine(store, adapter, clock, safety_net) -> PollEngine:
    return PollEngine(
        store,
        {adapter.name: adapter},
        transport=NO_TRANSPORT,
        policy=PollPolicy(),
        runner=run_coroutine,
        clock=clock,
        rng=random.Random(3),
        safety_net=safety_net,
    )


def waits(store, ids, clock) -> list[float]:
    return [(store.rows[i].next_poll_at - clock()).total_seconds() for i in ids]


def test_hinted_transitions_stretch_the_providers_waits_and_silence_restores_them(client):
    clock, store, hook = FakeClock(), MemoryStore(), Switches()
    safety = net(client, clock, hook)
    ids = [store.add("notus", f"s-{i}", now=clock()) for i in range(20)]
    clock.advance(30)
    record_hints(client, "notus", ids[:17], clock())  # 17 of 20 hinted: 0.85 >= 0.8
    engine(store, ScriptedAdapter("notus", [result("in_review")]), clock, safety).poll_batch(ids)
    assert {store.rows[i].stored.status for i in ids} == {S.IN_REVIEW}
    assert safety.states()["notus"].stretched and hook.seen == [("notus", True)]
    assert not safety.states()["gu1"].stretched  # per provider

    # Unchanged polls now wait 4x the review's first wait (360 s, +-10 %), under the 30 min gap.
    engine(store, ScriptedAdapter("notus", [result("in_review")]), clock, safety).poll_batch(ids)
    assert all(4 * 324 <= wait <= 4 * 396 for wait in waits(store, ids, clock))

    # The hints stop: 10 min without one while polls still find changes -> normal at once.
    clock.advance(601)
    more = [store.add("notus", f"t-{i}", now=clock()) for i in range(2)]
    clock.advance(30)
    engine(store, ScriptedAdapter("notus", [result("in_review")]), clock, safety).poll_batch(more)
    state = safety.states()["notus"]
    assert not state.stretched and state.reason.value == "hints_stopped"
    engine(store, ScriptedAdapter("notus", [result("in_review")]), clock, safety).poll_batch(ids)
    # 631 s into the review: the schedule's own 230 s pace again (stretched it would be 920).
    assert all(1 <= wait <= 230 for wait in waits(store, ids, clock))
    assert hook.seen == [("notus", True), ("notus", False)]


def test_a_switch_is_reported_once_for_the_fleet(client):
    clock = FakeClock()
    record_hints(client, "gu1", range(10), clock())
    first, second = Switches(), Switches()
    net(client, clock, first).record_transitions(
        FoundTransition("gu1", i, clock().timestamp() - 1) for i in range(10)
    )
    net(client, clock, first).states()
    net(client, clock, second).states()
    assert first.seen == [("gu1", True)] and second.seen == []


def test_unhinted_transitions_never_stretch(client):
    clock, store = FakeClock(), MemoryStore()
    safety = net(client, clock)
    ids = [store.add("notus", f"s-{i}", now=clock()) for i in range(20)]
    engine(store, ScriptedAdapter("notus", [result("in_review")]), clock, safety).poll_batch(ids)
    state = safety.states()["notus"]
    assert not state.stretched and state.share == 0.0 and state.transitions == 20


def test_redis_down_means_polling_alone():
    clock = FakeClock()
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert net(dead, clock).stretches() == {}


def test_a_forged_or_garbled_record_is_read_safely(client):
    # Whoever could write these keys gets at most every wait at its maximum gap; garbage
    # reads as "unhinted" and "no time", never an exception in the poll path.
    clock = FakeClock()
    client.rpush("kyc-poller:hintshare:gu1", "yes", "\x00" * 1000, *(["1"] * 30))
    client.set("kyc-poller:hints:gu1:last", "not a time")
    client.set("kyc-poller:hintshare:gu1:unhinted", "NaN-ish")
    record = net(client, clock).records()["gu1"]
    assert record.recent[:2] == (False, False) and record.recent.count(True) == 18
    assert record.last_hint_at is None and record.last_unhinted_at is None
    assert net(client, clock).stretches() == {"gu1": 4.0}
    client.set("kyc-poller:hints:gu1:last", "nan")
    assert net(client, clock).records()["gu1"].last_hint_at is None


def test_a_garbled_hint_stamp_counts_as_no_hint_and_the_record_is_written(client):
    # A verification's hint key is written by the HTTP service; garbage there must not
    # raise out of the poll engine after its write.
    clock = FakeClock()
    client.set("kyc-poller:hint:7", "\xff not a time")
    client.set("kyc-poller:hint:8", "inf")
    found = [FoundTransition("gu1", vid, clock()) for vid in (7, 8)]
    assert net(client, clock).record_transitions(found) == 2
    assert client.lrange("kyc-poller:hintshare:gu1", 0, -1) == [b"0", b"0"]
