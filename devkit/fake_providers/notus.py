"""Fake Notus: GET /api/v1/kyc/individual-verification-sessions/standard/{sessionId}, x-api-key.

Answers carry the personal-data fields of the documented answer, with fake
values (PERSONAL_VALUES) that tests look for where they must not be. A
COMPLETED session also carries `individualId`, as public Notus clients show.

DOCUMENTED_STATUSES are the words Notus is known to send (notus.txt shows
PENDING; public clients written from docs.notus.team type the status as these
five): the demo and the tests script sessions with them, so an adapter table
that misreads one fails the suite. Any other word is rendered as given.
"""

from __future__ import annotations

import re

from devkit.fake_providers.provider import FakeProvider, Route, secret_matches
from devkit.fake_providers.steps import Step
from devkit.fake_providers.wire import Reply, Request, json_reply, now_iso

FIRST_NAME = "Adelheid-Fake"
LAST_NAME = "Notusson-Fake"
BIRTH_DATE = "1984-02-29"
DOCUMENT_ID = "NTS-DOC-884213"
PERSONAL_VALUES = (FIRST_NAME, LAST_NAME, BIRTH_DATE, DOCUMENT_ID)
DOCUMENT_TYPE = "PASSPORT"
DOCUMENT_CATEGORY = "IDENTITY_DOCUMENT"
CREATED_AT = "2026-01-05T09:00:00Z"
INDIVIDUAL_ID = "ind-fake-5f2c9a"
DOCUMENTED_STATUSES = ("PENDING", "VERIFYING", "COMPLETED", "FAILED", "EXPIRED")


class NotusFake(FakeProvider):
    name = "notus"
    initial_status = "PENDING"
    route_pattern = re.compile(
        r"/api/v1/kyc/individual-verification-sessions/standard/(?P<id>[^/]+)"
    )

    def check_auth(self, request: Request) -> Reply | None:
        if secret_matches(request.header("x-api-key"), self.credentials.notus_api_key):
            return None
        return json_reply(401, {"statusCode": 401, "message": "Invalid or missing API key"})

    def render(self, route: Route, status: str, step: Step) -> Reply:
        session: dict[str, object] = {
            "id": route.session_id,
            "status": status,
            "livenessRequired": bool(step.option("liveness_required", True)),
            "firstName": FIRST_NAME,
            "lastName": LAST_NAME,
            "birthDate": BIRTH_DATE,
            "document": {
                "id": DOCUMENT_ID,
                "type": DOCUMENT_TYPE,
                "category": DOCUMENT_CATEGORY,
            },
            "createdAt": CREATED_AT,
            "updatedAt": now_iso(),
        }
        if status.upper() == "COMPLETED":
            session["individualId"] = INDIVIDUAL_ID
        return json_reply(200, {"session": session})

    def render_malformed(self, route: Route) -> Reply:
        return json_reply(200, {"session": {"id": route.session_id, "firstName": FIRST_NAME}})

    def render_not_found(self, route: Route) -> Reply:
        return json_reply(404, {"statusCode": 404, "message": "Verification session not found"})
