"""Fake gu1: GET /api/kyc/validations/{validationId} and POST .../{validationId}/sync, Bearer.

The sync (docs.gu1.ai/en/use-cases/kyc/check-status, "Sync Validation Status")
takes the body {"force": true}; anything else is a 400. It answers 200 with
{"id", "status", "synced": true} (GUESS: the docs show no answer) and counts the
sync on the session: a step {"status": "in_progress", "after_sync": "approved"}
plays a validation stuck until someone syncs it.

A step may also set "needs_reverification" (bool) and "expires_at" (an ISO 8601
string) or "expires_in" (seconds from now): the validation's `needsReverification`
and `expiresAt`. Unscripted, `needsReverification` is false and `expiresAt` null.

approved, rejected and in_review answers carry a decision; by default in both
documented shapes at once (overview words documentAuthenticity/faceMatch/aml,
feature blocks with their array aliases; `liveness` can only be one of them
and is the feature block). A step may choose {"status": ..., "decision":
"overview" | "features" | "both" | {...as-is...}} and "warnings": [...].
extractedData, document numbers, media keys and the IP address are the
personal values (PERSONAL_VALUES).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from devkit.fake_providers.provider import FakeProvider, Route, bearer_matches
from devkit.fake_providers.state import SessionStore
from devkit.fake_providers.steps import Step
from devkit.fake_providers.wire import Reply, Request, json_reply, now_iso

FIRST_NAME = "Guadalupe-Fake"
LAST_NAME = "Unoson-Fake"
DATE_OF_BIRTH = "1979-11-03"
DOCUMENT_NUMBER = "GU1-PASS-552019"
FRONT_IMAGE = "kyc/fake/front-552019.jpg"
PORTRAIT_IMAGE = "kyc/fake/portrait-552019.jpg"
SELFIE_IMAGE = "kyc/fake/selfie-552019.jpg"
IP_ADDRESS = "203.0.113.77"
PERSONAL_VALUES = (
    FIRST_NAME,
    LAST_NAME,
    DATE_OF_BIRTH,
    DOCUMENT_NUMBER,
    FRONT_IMAGE,
    PORTRAIT_IMAGE,
    SELFIE_IMAGE,
    IP_ADDRESS,
)
DECIDED = {"approved", "rejected", "in_review"}
DOCUMENTED_STATUSES = (
    "pending",
    "in_progress",
    "in_review",
    "approved",
    "rejected",
    "expired",
    "abandoned",
    "cancelled",
)
ENTITY_ID = "ent-fake-0001"
SYNC_PATTERN = re.compile(r"/api/kyc/validations/(?P<id>[^/]+)/sync")

# Per status: overview words, feature statuses, warnings (top-level, per feature).
OUTCOMES: dict[str, dict[str, Any]] = {
    "approved": {
        "overview": {
            "documentAuthenticity": "pass",
            "faceMatch": "pass",
            "liveness": "pass",
            "aml": "clear",
        },
        "features": {
            "id_verification": "Approved",
            "face_match": "Approved",
            "liveness": "Approved",
            "aml_screening": "Approved",
        },
        "warnings": [],
        "feature_warnings": {},
    },
    "rejected": {
        "overview": {
            "documentAuthenticity": "fail",
            "faceMatch": "fail",
            "liveness": "pass",
            "aml": "match",
        },
        "features": {
            "id_verification": "Declined",
            "face_match": "Declined",
            "liveness": "Approved",
            "aml_screening": "Declined",
        },
        "warnings": ["DOCUMENT_TAMPERED", "LOW_FACE_MATCH_SIMILARITY", "POSSIBLE_MATCH_FOUND"],
        "feature_warnings": {
            "id_verification": "DOCUMENT_TAMPERED",
            "face_match": "LOW_FACE_MATCH_SIMILARITY",
            "aml_screening": "POSSIBLE_MATCH_FOUND",
        },
    },
    "in_review": {
        "overview": {
            "documentAuthenticity": "pass",
            "faceMatch": "pass",
            "liveness": "pass",
            "aml": "pending",
        },
        "features": {
            "id_verification": "Approved",
            "face_match": "Approved",
            "liveness": "Approved",
            "aml_screening": "In Review",
        },
        "warnings": ["POSSIBLE_MATCH_FOUND"],
        "feature_warnings": {"aml_screening": "POSSIBLE_MATCH_FOUND"},
    },
}
SCORES = {"face_match": 97.4, "liveness": 99.1}
ALIASES = {
    "id_verification": "id_verifications",
    "face_match": "face_matches",
    "liveness": "liveness_checks",
    "aml_screening": "aml_screenings",
    "ip_analysis": "ip_analyses",
}


def _warning(risk: str) -> dict[str, Any]:
    return {
        "risk": risk,
        "log_type": "warning",
        "short_description": risk.replace("_", " ").capitalize(),
        "additional_data": {"document_number": DOCUMENT_NUMBER},
    }


def feature_blocks(status: str) -> dict[str, Any]:
    """The current shape: one block per feature, plus its one-element array alias."""
    outcome = OUTCOMES[status]
    warned = outcome["feature_warnings"]
    blocks: dict[str, dict[str, Any]] = {
        "id_verification": {
            "document_type": "Passport",
            "document_number": DOCUMENT_NUMBER,
            "first_name": FIRST_NAME,
            "last_name": LAST_NAME,
            "date_of_birth": DATE_OF_BIRTH,
            "front_image": FRONT_IMAGE,
            "portrait_image": PORTRAIT_IMAGE,
        },
        "face_match": {"source_image": SELFIE_IMAGE, "target_image": PORTRAIT_IMAGE},
        "liveness": {"method": "PASSIVE", "reference_image": SELFIE_IMAGE},
        "aml_screening": {"total_hits": 1 if "aml_screening" in warned else 0},
    }
    for key, block in blocks.items():
        block["status"] = outcome["features"][key]
        if key in SCORES:
            block["score"] = SCORES[key]
        block["warnings"] = [_warning(warned[key])] if key in warned else []
    blocks["ip_analysis"] = {
        "status": "Approved",
        "ip_address": IP_ADDRESS,
        "country": "AR",
        "is_vpn": False,
        "warnings": [],
    }
    decision: dict[str, Any] = {}
    for key, block in blocks.items():
        decision[key] = block
        decision[ALIASES[key]] = [dict(block)]
    return decision


def decision_for(status: str, shape: object) -> dict[str, Any] | None:
    if isinstance(shape, dict):
        return shape
    if status not in DECIDED:
        return None
    overview = dict(OUTCOMES[status]["overview"])
    if shape == "overview":
        return overview
    features = feature_blocks(status)
    if shape == "features":
        return features
    overview.pop("liveness")  # "both": the liveness key holds the feature block
    return {**overview, **features}


class Gu1Fake(FakeProvider):
    name = "gu1"
    initial_status = "pending"
    route_pattern = re.compile(r"/api/kyc/validations/(?P<id>[^/]+)")

    def handle_action(self, path: str, request: Request, store: SessionStore) -> Reply | None:
        match = SYNC_PATTERN.fullmatch(path)
        if match is None:
            return None
        if request.method != "POST":
            return json_reply(405, {"error": "method not allowed"}, {"Allow": "POST"})
        refusal = self.check_auth(request)
        if refusal is not None:
            return refusal
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        if body != {"force": True}:
            refused = {"error": "validation_error", "message": 'expected {"force": true}'}
            return json_reply(400, refused)
        validation_id = unquote(match["id"])
        session = store.sync(self.name, validation_id)
        if session is None:
            return self.render_not_found(Route(validation_id))
        status = session.last_status or self.initial_status
        return json_reply(200, {"id": validation_id, "status": status, "synced": True})

    def check_auth(self, request: Request) -> Reply | None:
        if bearer_matches(request, self.credentials.gu1_api_key):
            return None
        return json_reply(401, {"error": "unauthorized", "message": "Invalid API key"})

    def render(self, route: Route, status: str, step: Step) -> Reply:
        decision = decision_for(status, step.option("decision", "both"))
        warnings = step.option("warnings")
        if warnings is None:
            warnings = list(OUTCOMES[status]["warnings"]) if status in OUTCOMES else []
        decided = decision is not None
        document: dict[str, Any] = {
            "id": route.session_id,
            "entityId": ENTITY_ID,
            "status": status,
            "provider": "didit",
            "createdAt": "2026-01-05T09:00:00Z",
            "updatedAt": now_iso(),
            "decision": decision,
            "warnings": warnings,
            "extractedData": _extracted_data() if decided else None,
            "verifiedFields": ["firstName", "lastName", "dateOfBirth"] if decided else [],
            "isCurrent": True,
            "needsReverification": bool(step.option("needs_reverification", False)),
            "expiresAt": _expires_at(step),
        }
        return json_reply(200, document)

    def render_malformed(self, route: Route) -> Reply:
        return json_reply(200, {"id": route.session_id, "extractedData": _extracted_data()})

    def render_not_found(self, route: Route) -> Reply:
        return json_reply(404, {"error": "not_found", "message": "Validation not found"})


def _expires_at(step: Step) -> str | None:
    expires_at = step.option("expires_at")
    if isinstance(expires_at, str):
        return expires_at
    expires_in = step.option("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        moment = datetime.now(UTC) + timedelta(seconds=expires_in)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return None


def _extracted_data() -> dict[str, Any]:
    return {
        "firstName": FIRST_NAME,
        "lastName": LAST_NAME,
        "dateOfBirth": DATE_OF_BIRTH,
        "documentNumber": DOCUMENT_NUMBER,
        "nationality": "ARG",
    }
