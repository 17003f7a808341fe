"""Fake Bank131: GET or POST /api/v1.1/check/{id} with X-PARTNER-PROJECT and X-PARTNER-SIGN.

Status steps are "ok", "pending" or "error:<code>"; {"status": "error:already_exists",
"earlier_id": "7"} names the earlier check, and any step may set "http_status"
(error answers default to HTTP 200, as documented). An unknown project or a bad
signature is refused with Bank131's own error JSON and HTTP 403.

The signature is checked independently of the adapter's code: hex
HMAC-SHA256(secret, "METHOD\\npath\\nbody") over the path as received (the
adapter's documented GUESS of the scheme).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from devkit.fake_providers.provider import FakeProvider, Route, secret_matches
from devkit.fake_providers.steps import Step
from devkit.fake_providers.wire import Reply, Request, json_reply

PARTICIPANT_REFERENCE = "rcpt-fake-4711"
PERSONAL_VALUES = (PARTICIPANT_REFERENCE,)
DEFAULT_EARLIER_ID = "1"
ERROR_DESCRIPTIONS = {
    "invalid_sign": "Signature verification failure",
    "passport_validation_failure": "Passport validation failure",
    "inn_validation_failure": "Inn validation failure",
    "already_exists": "Request with the same data already exists",
    "request_not_found": "Request with given id not found",
    "partner_project_not_found": "partner project not found",
}


def error_body(code: str, **data: object) -> dict[str, object]:
    body: dict[str, object] = {
        "status": "error",
        "error": {"code": code, "description": ERROR_DESCRIPTIONS.get(code, "Unknown error")},
    }
    if data:
        body["data"] = data
    return body


class Bank131Fake(FakeProvider):
    name = "bank131"
    methods = frozenset({"GET", "POST"})
    initial_status = "pending"
    route_pattern = re.compile(r"/api/v1\.1/check/(?P<id>[^/]+)")

    def check_auth(self, request: Request) -> Reply | None:
        if not secret_matches(
            request.header("x-partner-project"), self.credentials.bank131_project
        ):
            return json_reply(403, error_body("partner_project_not_found"))
        message = f"{request.method}\n{request.path}\n{request.body.decode('utf-8', 'replace')}"
        expected = hmac.new(
            self.credentials.bank131_signing_secret.encode(), message.encode(), hashlib.sha256
        ).hexdigest()
        if not secret_matches(request.header("x-partner-sign"), expected):
            return json_reply(403, error_body("invalid_sign"))
        return None

    def render(self, route: Route, status: str, step: Step) -> Reply:
        http_status = step.option("http_status", 200) if step.fault is None else 200
        if status == "ok":
            data = {
                "id": route.session_id,
                "description": "valid",
                "participant": {"reference": PARTICIPANT_REFERENCE},
            }
            return json_reply(http_status, {"status": "ok", "data": data})
        if status == "pending":
            data = {"id": route.session_id, "description": "Check in progress"}
            return json_reply(http_status, {"status": "pending", "data": data})
        if status.startswith("error:"):
            code = status.removeprefix("error:")
            if code == "already_exists":
                earlier = str(step.option("earlier_id", DEFAULT_EARLIER_ID))
                return json_reply(http_status, error_body(code, id=earlier))
            return json_reply(http_status, error_body(code))
        return json_reply(http_status, {"status": status, "data": {"id": route.session_id}})

    def render_malformed(self, route: Route) -> Reply:
        return json_reply(200, {"data": {"id": route.session_id, "description": "valid"}})

    def render_not_found(self, route: Route) -> Reply:
        return json_reply(404, error_body("request_not_found"))
