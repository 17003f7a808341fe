"""The shared HTTP plumbing: no automatic retries, Retry-After parsing, status classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from worker.adapters.base import PermanentProviderError, ProviderError, TransientProviderError
from worker.adapters.http import (
    USER_AGENT,
    create_http_session,
    parse_retry_after,
    provider_url,
    raise_for_http_status,
)


def response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.headers.update(headers or {})
    answer._content = b'{"secret": "personal body"}'
    return answer


def test_session_sends_our_user_agent_and_never_retries_by_itself():
    session = create_http_session()
    assert session.headers["User-Agent"] == USER_AGENT == "kyc-poller/0.1"
    for prefix in ("http://", "https://"):
        retries = session.get_adapter(prefix + "example.test").max_retries
        assert retries.total == 0
        assert not retries.connect and not retries.read and not retries.status
        assert not retries.redirect


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
        (401, PermanentProviderError, "auth_failed"),
        (403, PermanentProviderError, "auth_failed"),
        (404, PermanentProviderError, "not_found"),
        (410, PermanentProviderError, "http_error"),
        (429, TransientProviderError, "rate_limited"),
        (500, TransientProviderError, "server_error"),
        (504, TransientProviderError, "server_error"),
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
