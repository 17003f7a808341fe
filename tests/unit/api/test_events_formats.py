"""Event formats (legacy and CloudEvents 1.0) and the stream-id arithmetic of the helper."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis

from worker.api.events import check_stream_id, id_before, parse_entry, parse_event, stream_id_at
from worker.domain.cloudevents import (
    ATTRIBUTES,
    NotAKycCloudEvent,
    cloudevent_type,
    from_cloudevent,
    to_cloudevent,
)
from worker.domain.events import DEFAULT_EVENTS_STREAM, StatusChange, build_status_event
from worker.services.relay import OutboxRelay


def event(**overrides):
    change = StatusChange(
        verification_id=42,
        verification_version=5,
        provider="gu1",
        external_id="val-123",
        verification_type=None,
        from_status="in_review",
        to_status="approved",
        terminal=True,
        provider_status="approved",
        reason="provider",
        error_code=None,
        related_external_id=None,
        occurred_at=datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC),
    )
    return {**build_status_event(change, "1b0c5f0e-7a55-4d53-9a8f-5f1f3d0b8e6a"), **overrides}


def test_a_cloudevent_wraps_the_legacy_event():
    legacy = event()
    ce = to_cloudevent(legacy)
    assert tuple(ce) == ATTRIBUTES
    assert ce == {
        "specversion": "1.0",
        "id": "1b0c5f0e-7a55-4d53-9a8f-5f1f3d0b8e6a",
        "source": "kyc-poller",
        "type": "com.kyc-poller.verification.status_changed.v1",
        "subject": "gu1/val-123",
        "time": "2026-11-23T12:00:00.123456+00:00",
        "datacontenttype": "application/json",
        "data": legacy,
    }
    assert json.loads(json.dumps(ce)) == ce
    assert from_cloudevent(ce) == legacy
    assert to_cloudevent(legacy, source="urn:acme:kyc")["source"] == "urn:acme:kyc"


def test_the_type_carries_the_schema_version():
    assert cloudevent_type("verification.status_changed", 2) == (
        "com.kyc-poller.verification.status_changed.v2"
    )
    assert to_cloudevent(event(schema_version=2))["type"].endswith(".v2")


def test_not_every_document_makes_a_cloudevent():
    with pytest.raises(NotAKycCloudEvent, match="occurred_at"):
        to_cloudevent({k: v for k, v in event().items() if k != "occurred_at"})
    with pytest.raises(ValueError, match="source"):
        to_cloudevent(event(), source="")
    ce = to_cloudevent(event())
    for broken in (
        {**ce, "specversion": "0.3"},
        {**ce, "type": "com.example.other"},
        {**ce, "data": "text"},
        {**ce, "id": "another"},
    ):
        with pytest.raises(NotAKycCloudEvent):
            from_cloudevent(broken)


@pytest.mark.parametrize("field", ["event_id", "event_type", "occurred_at"])
@pytest.mark.parametrize("value", [None, "", 17])
def test_a_cloudevent_needs_its_id_type_and_time_as_strings(field, value):
    # Else `id: "None"` or `time: "None"`: not CloudEvents 1.0 (time is RFC 3339).
    with pytest.raises(NotAKycCloudEvent, match=field):
        to_cloudevent(event(**{field: value}))


def test_subject_falls_back_to_the_verification_id():
    assert to_cloudevent(event(provider=None))["subject"] == "verification/42"


def test_stream_ids():
    assert check_stream_id("1700000000000") == "1700000000000-0"
    assert check_stream_id(" 5-3 ") == "5-3"
    for bad in ("", "-1", "1-", "abc", "1-2-3", "$", ">", f"{2**64}-0"):
        with pytest.raises(ValueError):
            check_stream_id(bad)
    assert id_before("5-3") == "5-2"
    assert id_before("5-0") == f"4-{2**64 - 1}"
    assert id_before("0-0") == "0-0"
    assert id_before("7") == f"6-{2**64 - 1}"


def test_stream_id_at_a_time():
    moment = datetime(2026, 11, 23, 12, 0, 0, 123999, tzinfo=UTC)
    assert stream_id_at(moment) == "1795435200123-0"
    plus_three = moment.astimezone(timezone(timedelta(hours=3)))
    assert stream_id_at(plus_three) == "1795435200123-0"
    with pytest.raises(ValueError, match="time zone"):
        stream_id_at(datetime(2026, 11, 23))
    with pytest.raises(ValueError, match="1970"):
        stream_id_at(datetime(1969, 12, 31, tzinfo=UTC))


def test_parse_entry_reads_bytes_or_text_fields():
    raw = json.dumps(event())
    assert parse_entry({b"event": raw.encode(), b"event_id": b"x"}) == event()
    assert parse_entry({"event": raw}) == event()
    assert parse_entry({}) is None  # a deleted entry
    assert parse_entry(None) is None
    assert parse_entry({b"event": b"not json"}) is None
    assert parse_entry({b"other": b"1"}) is None
    assert parse_event(json.dumps(event(schema_version=99))) is None


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 200_000 + "]" * 200_000,  # deeper than the parser goes
        json.dumps(event(event_id=["not", "hashable"])),
        json.dumps(event(event_id="")),
        json.dumps(event(event_id=None)),
    ],
    ids=["deep", "list-id", "empty-id", "null-id"],
)
def test_an_entry_no_reader_could_handle_is_not_an_event(raw):
    # Raising instead would crash a consumer before its ack, on every restart.
    assert parse_event(raw) is None


def test_the_stream_goes_with_the_channel_unless_configured():
    client = redis.Redis()  # never connected: registering a script sends nothing
    assert OutboxRelay(None, client, "kyc.verification.events", dedupe_ttl=1).stream == (
        DEFAULT_EVENTS_STREAM
    )
    assert DEFAULT_EVENTS_STREAM == "kyc.verification.events.stream"
    assert OutboxRelay(None, client, "acme.events", dedupe_ttl=1).stream == "acme.events.stream"
    assert OutboxRelay(None, client, "acme.events", dedupe_ttl=1, stream="s").stream == "s"
    with pytest.raises(ValueError, match="negative"):
        OutboxRelay(None, client, "c", dedupe_ttl=1, stream_maxlen=-1)
