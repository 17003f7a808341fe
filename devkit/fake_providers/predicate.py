"""Fake Predicate: GET /api/v1/status/{individual|business}/{sessionId}, Authorization: Bearer.

A session answers only under its own type (individual unless added otherwise);
wallet addresses and the user id are the personal values (PERSONAL_VALUES).
DOCUMENTED_STATUSES are predicate.txt's words; OLDER_STATUSES the two an older
revision of the docs used (in_progress, failed). Any other word is rendered as given.
"""

from __future__ import annotations

import re

from devkit.fake_providers.provider import FakeProvider, Route, bearer_matches
from devkit.fake_providers.steps import Step
from devkit.fake_providers.wire import Reply, Request, json_reply, now_iso

USER_ID = "usr-fake-7c1e4d"
WALLETS = (
    {
        "id": "wallet-fake-1",
        "address": "0xFAKE00000000000000000000000000000000A11CE",
        "chain": "ethereum",
    },
    {
        "id": "wallet-fake-2",
        "address": "0xFAKE000000000000000000000000000000000B0B",
        "chain": "polygon",
    },
)
PERSONAL_VALUES = (USER_ID, *(wallet["address"] for wallet in WALLETS))
DOCUMENTED_STATUSES = ("pending", "submitted", "completed", "rejected", "retry")
OLDER_STATUSES = ("in_progress", "failed")


class PredicateFake(FakeProvider):
    name = "predicate"
    initial_status = "pending"
    default_type = "individual"
    route_pattern = re.compile(r"/api/v1/status/(?P<type>individual|business)/(?P<id>[^/]+)")

    def check_auth(self, request: Request) -> Reply | None:
        if bearer_matches(request, self.credentials.predicate_api_key):
            return None
        return json_reply(401, {"error": "Unauthorized"})

    def render(self, route: Route, status: str, step: Step) -> Reply:
        document: dict[str, object] = {"sessionId": route.session_id, "status": status}
        if status != "pending":
            document["userId"] = USER_ID
        if status == "completed":
            document["completedAt"] = now_iso()
            document["verifiedWallets"] = [dict(wallet) for wallet in WALLETS]
            document["unverifiedWallets"] = []
        else:
            document["verifiedWallets"] = []
            document["unverifiedWallets"] = [dict(WALLETS[0])]
        return json_reply(200, document)

    def render_malformed(self, route: Route) -> Reply:
        return json_reply(200, {"sessionId": route.session_id, "verifiedWallets": []})

    def render_not_found(self, route: Route) -> Reply:
        return json_reply(404, {"error": "Session not found"})
