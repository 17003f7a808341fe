"""Webhook rules: signatures over the raw body, bounded JSON, pointers, the replay window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from worker.domain.webhooks import (
    HmacScheme,
    JsonPointer,
    PointerFormat,
    Refusal,
    WebhookRefused,
    parse_object,
    parse_timestamp,
    raw_depth_exceeds,
    read_webhook,
)

SECRET = b"whsec-test"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def refused(reason, call, *args, **kwargs):
    with pytest.raises(WebhookRefused) as caught:
        call(*args, **kwargs)
    assert caught.value.reason is reason
    return caught.value


@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "sha1"])
def test_a_signature_made_by_the_scheme_verifies(algorithm, encoding):
    scheme = HmacScheme("X-Sig", algorithm, encoding, prefix="v1=")
    body = b'{"id": "a"}'
    scheme.verify(SECRET, body, {"x-sig": scheme.sign(SECRET, body)})


def test_the_raw_body_is_verified_not_a_reserialized_one():
    scheme = HmacScheme("X-Sig")
    body = b'{"id":"a",  "x": 1}'
    signature = scheme.sign(SECRET, body)
    same_json = json.dumps(json.loads(body)).encode()
    assert same_json != body
    refused(Refusal.BAD_SIGNATURE, scheme.verify, SECRET, same_json, {"x-sig": signature})


def test_missing_empty_garbled_and_wrong_signatures_are_told_apart():
    scheme = HmacScheme("X-Sig")
    body = b"{}"
    refused(Refusal.MISSING_SIGNATURE, scheme.verify, SECRET, body, {})
    refused(Refusal.MISSING_SIGNATURE, scheme.verify, SECRET, body, {"x-sig": "  "})
    refused(Refusal.BAD_SIGNATURE, scheme.verify, SECRET, body, {"x-sig": "zz-not-hex"})
    other = scheme.sign(b"another secret", body)
    error = refused(Refusal.BAD_SIGNATURE, scheme.verify, SECRET, body, {"x-sig": other})
    assert other not in str(error) and "whsec" not in str(error)


def test_a_scheme_is_validated():
    for bad in (
        lambda: HmacScheme("X", algorithm="md5"),
        lambda: HmacScheme("X", encoding="b32"),
        lambda: HmacScheme(" "),
    ):
        with pytest.raises(ValueError):
            bad()


def test_depth_is_read_on_the_raw_bytes_strings_aside():
    assert raw_depth_exceeds(b"[" * 100_000, 64)
    assert not raw_depth_exceeds(b'{"a": "[[[[[[[[[[[[[[\\"[[[["}', 2)
    assert raw_depth_exceeds(b'{"a": [[1]]}', 2)
    assert not raw_depth_exceeds(b'{"a": [1]}', 2)
    refused(Refusal.TOO_DEEP, parse_object, b"[" * 100_000 + b"]" * 100_000, 64)


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"a": NaN}', b"\xff\xfe"])
def test_only_json_objects_are_read(body):
    refused(Refusal.MALFORMED, parse_object, body, 64)


def test_json_pointers_follow_rfc_6901():
    document = {"a/b": {"m~n": [10, {"id": "x"}]}, "": 5}
    assert JsonPointer("/a~1b/m~0n/1/id").resolve(document) == "x"
    assert JsonPointer("/a~1b/m~0n/0").resolve(document) == 10
    assert JsonPointer("/").resolve(document) == 5
    assert JsonPointer("").resolve(document) == document
    assert JsonPointer("/a~1b/m~0n/01").resolve(document) is None  # no leading zeros
    assert JsonPointer("/a~1b/m~0n/9").resolve(document) is None
    assert JsonPointer("/nope/deeper").resolve(document) is None
    for bad in ("id", "/a~2"):
        with pytest.raises(ValueError):
            JsonPointer(bad)


def test_timestamps_iso_seconds_and_milliseconds():
    moment = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_timestamp("2026-11-23T12:00:00Z") == moment
    assert parse_timestamp(moment.timestamp()) == moment
    assert parse_timestamp(int(moment.timestamp() * 1000)) == moment
    assert parse_timestamp(str(int(moment.timestamp()))) == moment
    for bad in ("2026-11-23T12:00:00", True, -1, "x" * 100, None, float("nan")):
        assert parse_timestamp(bad) is None


def generic(timestamp: bool = True) -> PointerFormat:
    return PointerFormat(
        HmacScheme("X-Sig"),
        JsonPointer("/data/id"),
        JsonPointer("/sent") if timestamp else None,
    )


def signed(fmt, document):
    body = json.dumps(document).encode()
    return body, {"x-sig": fmt.scheme.sign(SECRET, body)}


def test_the_generic_format_reads_the_id_and_checks_the_window():
    fmt = generic()
    body, headers = signed(fmt, {"data": {"id": "chk-1"}, "sent": NOW.isoformat()})
    hint = read_webhook(fmt, SECRET, headers, body, now=NOW, max_depth=8, window_seconds=300)
    assert hint.external_ids == ("chk-1",)
    old = (NOW - timedelta(seconds=301)).isoformat()
    body, headers = signed(fmt, {"data": {"id": "chk-1"}, "sent": old})
    refused(
        Refusal.STALE,
        read_webhook,
        fmt,
        SECRET,
        headers,
        body,
        now=NOW,
        max_depth=8,
        window_seconds=300,
    )


@pytest.mark.parametrize(
    "document",
    [{"data": {}}, {"data": {"id": ""}}, {"data": {"id": {"x": 1}}}, {"data": {"id": True}}],
)
def test_a_signed_body_without_a_usable_id_is_malformed(document):
    fmt = generic(timestamp=False)
    body, headers = signed(fmt, document)
    refused(
        Refusal.MALFORMED,
        read_webhook,
        fmt,
        SECRET,
        headers,
        body,
        now=NOW,
        max_depth=8,
        window_seconds=0,
    )


def test_an_unsigned_body_is_never_parsed():
    fmt = generic()
    refused(
        Refusal.MISSING_SIGNATURE,
        read_webhook,
        fmt,
        SECRET,
        {},
        b"[" * 100_000,
        now=NOW,
        max_depth=8,
        window_seconds=300,
    )
