"""What every fake provider implements, and the faults they render the same way.

A fake provider knows its URL layout, checks its credentials exactly as its
adapter sends them, and renders answers in its own shape. Generic faults
(5xx, 429, non-JSON, ...) look the same everywhere and live here.
"""

from __future__ import annotations

import hmac
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from devkit.fake_providers.credentials import FakeCredentials
from devkit.fake_providers.state import SessionStore
from devkit.fake_providers.steps import Step
from devkit.fake_providers.wire import Reply, Request, json_reply, text_reply


@dataclass(frozen=True)
class Route:
    """Which session a status request is about."""

    session_id: str
    verification_type: str | None = None


class FakeProvider(ABC):
    name: str
    methods: frozenset[str] = frozenset({"GET"})
    # The status word of a fresh session (what a "timeout" step answers if nothing came before).
    initial_status: str
    # The type a session gets when added without one (Predicate: individual).
    default_type: str | None = None
    # The status endpoint below the provider's prefix; group 1 (and "type") are path segments.
    route_pattern: re.Pattern[str]

    def __init__(self, credentials: FakeCredentials) -> None:
        self.credentials = credentials

    def route(self, path: str) -> Route | None:
        """The session a request path (below /<provider>) names, or None if not an endpoint."""
        match = self.route_pattern.fullmatch(path)
        if match is None:
            return None
        groups = match.groupdict()
        verification_type = groups.get("type")
        return Route(
            unquote(groups["id"]), unquote(verification_type) if verification_type else None
        )

    def handle_action(self, path: str, request: Request, store: SessionStore) -> Reply | None:
        """An endpoint other than the status check (gu1's sync); None if `path` is none."""
        return None

    def allowed_methods(self, path: str) -> frozenset[str]:
        """The methods the endpoint at `path` (below /<provider>) answers."""
        return self.methods

    @abstractmethod
    def check_auth(self, request: Request) -> Reply | None:
        """The refusal for a request without the right credentials, else None."""

    @abstractmethod
    def render(self, route: Route, status: str, step: Step) -> Reply:
        """The answer for a session whose current status word is `status`."""

    @abstractmethod
    def render_malformed(self, route: Route) -> Reply:
        """A provider-shaped JSON answer without the status field."""

    @abstractmethod
    def render_not_found(self, route: Route) -> Reply:
        """The provider's answer for an unknown session id."""

    def render_fault(self, route: Route, step: Step, status: str | None) -> Reply:
        fault = step.fault
        if fault == "server_error":
            return text_reply(step.option("http_status", 500), "upstream unavailable")
        if fault == "rate_limited":
            headers = {}
            retry_after = retry_after_header(step.option("retry_after"))
            if retry_after is not None:
                headers["Retry-After"] = retry_after
            return json_reply(429, {"error": "too many requests"}, headers)
        if fault == "timeout":
            answer = self.render(route, status or self.initial_status, step)
            return Reply(
                answer.status,
                answer.body,
                answer.content_type,
                answer.headers,
                delay=float(step.option("delay", 2.0)),
            )
        if fault == "garbage":
            return text_reply(200, "<html><body>Bad gateway</body></html>", "text/html")
        if fault == "not_object":
            return json_reply(200, [{"status": status or self.initial_status}])
        if fault == "malformed":
            return self.render_malformed(route)
        if fault == "not_found":
            return self.render_not_found(route)
        if fault == "http_error":
            return json_reply(step.option("http_status", 400), {"error": "request refused"})
        raise ValueError(f"unknown fault {fault!r}")


def retry_after_header(value: Any) -> str | None:
    """Seconds as a whole number when they are one; strings (HTTP-dates) as given."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return str(value)


def secret_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer_matches(request: Request, api_key: str) -> bool:
    return secret_matches(request.header("authorization"), f"Bearer {api_key}")
