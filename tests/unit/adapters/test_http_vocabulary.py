"""The shared HTTP vocabulary: Retry-After parsing, status classification, URL quoting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from worker.adapters.contract import ProviderResponse
from worker.adapters.http import (
    parse_json_object,
    parse_retry_after,
    provider_url,
    raise_for_http_status,
)
from worker.domain.errors import (
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)


def response(status: int, headers: dict[str, str] | None = None) -> ProviderResponse:
    lowered = {key.lower(): value for key, value in (headers or {}).items()}
    return ProviderResponse(status, lowered, b'{"secret": "personal body"}')


@pytest.mark.parametrize(
    ("header", "expected"),
    [("0", 0.0), ("12", 12.0), ("1.5", 1.5), (" 3 ", 3.0), ("-5", 0.0)],
)
def test_retry_after_delta_seconds(header, expected):
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "Thu, 99 Foo 2015 xx"])
def test_retry_after_that_cannot_be_read_is_none(header):
    assert parse_retry_after(header) is None


def test_retry_after_http_date_in_the_future_and_past():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    future = format_datetime(now + timedelta(seconds=90), usegmt=True)
    past = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(future, now=now.timestamp()) == pytest.approx(90.0)
    assert parse_retry_after(past, now=now.timestamp()) == 0.0


@pytest.mark.parametrize(
    ("status", "error_class", "code"),
    [
        (301, PermanentProviderError, "http_error"),
        (302, PermanentProviderError, "http_error"),
        (400, PermanentProviderError, "http_error"),
        (401, ProviderUnavailableError, "auth_failed"),
        (403, ProviderUnavailableError, "auth_failed"),
        (404, PermanentProviderError, "not_found"),
        (408, ProviderUnavailableError, "timeout"),  # a proxy gave up: not the request's fault
        (410, PermanentProviderError, "http_error"),
        (425, RateLimitedError, "rate_limited"),  # Too Early: come back later
        (429, RateLimitedError, "rate_limited"),
        (500, ProviderUnavailableError, "server_error"),
        (504, ProviderUnavailableError, "server_error"),
    ],
)
def test_http_status_classification(status, error_class, code):
    with pytest.raises(ProviderError) as info:
        raise_for_http_status("notus", response(status))
    assert type(info.value) is error_class
    assert (info.value.code, info.value.http_status) == (code, status)
    assert "personal body" not in str(info.value)
    assert f"HTTP {status} from notus" in str(info.value)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_passes(status):
    raise_for_http_status("notus", response(status))


def test_every_path_segment_is_quoted_whole():
    url = provider_url("http://h/base", "api", "a/b", "../x", "a b?c#d")
    assert url == "http://h/base/api/a%2Fb/..%2Fx/a%20b%3Fc%23d"


def test_a_429_carries_its_retry_after():
    with pytest.raises(RateLimitedError) as info:
        raise_for_http_status("notus", response(429, {"Retry-After": "7"}))
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "PENDING", "score": NaN}',
        b'{"status": "PENDING", "score": Infinity}',
        b'{"status": "PENDING", "score": -Infinity}',
        b'{"status": "PENDING", "score": 1e999}',
    ],
)
def test_numbers_json_does_not_have_are_a_malformed_answer(body):
    # Python's json reads them; jsonb and SQLite's JSON refuse them, and one such answer
    # used to fail the write of its whole batch, on every retry.
    with pytest.raises(PermanentProviderError) as info:
        parse_json_object("fake", ProviderResponse(200, {}, body))
    assert info.value.code == "malformed_response"


def test_ordinary_numbers_still_parse():
    body = b'{"score": 0.25, "count": 3, "big": 1e300, "exact": 12345678901234567890}'
    assert parse_json_object("fake", ProviderResponse(200, {}, body)) == {
        "score": 0.25,
        "count": 3,
        "big": 1e300,
        "exact": 12345678901234567890,
    }
