"""gu1: a KYC validation, fetched by its id; a sync when it looks stuck.

GET {base}/api/kyc/validations/{validationId} with `Authorization: Bearer
<api_key>` (docs.gu1.ai/en/use-cases/kyc/check-status confirms both; the seeds
named the call only). The validation object is the top level of the answer:
{"id", "entityId", "status", "decision", "warnings", "extractedData",
"verifiedFields", "needsReverification", "expiresAt", "isCurrent", ...}.

Sync: POST {base}/api/kyc/validations/{validationId}/sync with the body
{"force": true} (the same page: "trigger a manual sync if you suspect the status
is out of sync"). GUESS: its answer is undocumented; a 2xx is taken as accepted
(with the status word if the body has one), anything else as its HTTP error.
When kyc-poller asks for one is the domain's rule (`worker.domain.sync`).

Re-verification: `needsReverification` (a boolean) and `expiresAt` (ISO 8601;
GUESS: without a zone it is UTC) become the result's `reverification` facts and
are kept in the summary (the docs: "Verifications may expire after a certain
period (typically 1 year). Check needsReverification"). An unreadable date is
left out, never guessed.

Status words are documented (gu1.txt) and map 1:1 (STATUS_TABLE), matched
case-insensitively.

The summary keeps the decision (document authenticity, face match, liveness,
AML), feature scores and warning codes, the entity id, the names (not the
values) of the verified fields, isCurrent and the re-verification facts; never
extractedData, document numbers, media keys or IP addresses. Both documented
decision shapes are read:
- overview: decision.documentAuthenticity / faceMatch / liveness / aml with
  pass | fail | pending (AML: clear | match | pending), taken as they are;
  GUESS: also accepted when nested under decision.verificationResults;
- feature blocks: id_verification (or id_verifications[0]), face_match
  (face_matches[0]), liveness (liveness_checks[0]), aml_screening
  (aml_screenings[0]), each with a status (Approved, Declined, In Review, ...),
  an optional score and warnings.
GUESS: feature statuses are put into the overview's words by FEATURE_RESULTS
(Approved -> pass, Declined -> fail, In Review -> review, not started/in
progress -> pending; for AML pass/fail read clear/match), so the summary has
one vocabulary whichever shape came. When a check is in both shapes, the
overview value wins. Warnings (top-level risk codes and the features' warning
codes: strings, or objects whose risk/code field is taken) are merged in
order without duplicates. gu1 has no verification types.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from worker.adapters.common import ApiKeySettings, plain_id
from worker.adapters.contract import (
    PollResult,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    require,
)
from worker.adapters.http import checked_json, provider_url, short_text, status_word
from worker.adapters.status_table import StatusTable, documented
from worker.domain.results import ReverificationFacts
from worker.domain.statuses import VerificationStatus
from worker.domain.webhooks import (
    HmacScheme,
    JsonPointer,
    Refusal,
    WebhookFormat,
    WebhookHint,
    WebhookRefused,
    parse_timestamp,
)

VALIDATION_PATH = ("api", "kyc", "validations")
SYNC_BODY = b'{"force":true}'
MAX_VERIFIED_FIELDS = 32

GU1_DOC = (
    "gu1.txt: Check Verification Status, Status Values (docs.gu1.ai/en/use-cases/kyc/check-status)"
)

STATUS_TABLE: StatusTable[VerificationStatus] = StatusTable(
    "gu1",
    {
        "pending": documented(VerificationStatus.PENDING, GU1_DOC),
        "in_progress": documented(VerificationStatus.IN_PROGRESS, GU1_DOC),
        "in_review": documented(VerificationStatus.IN_REVIEW, GU1_DOC),
        "approved": documented(VerificationStatus.APPROVED, GU1_DOC),
        "rejected": documented(VerificationStatus.REJECTED, GU1_DOC),
        "expired": documented(VerificationStatus.EXPIRED, GU1_DOC),
        "abandoned": documented(VerificationStatus.ABANDONED, GU1_DOC),
        "cancelled": documented(VerificationStatus.CANCELLED, GU1_DOC),
    },
)

# Summary key -> (overview key, feature block key, its array alias).
DECISION_CHECKS: tuple[tuple[str, str, str, str], ...] = (
    ("document_authenticity", "documentAuthenticity", "id_verification", "id_verifications"),
    ("face_match", "faceMatch", "face_match", "face_matches"),
    ("liveness", "liveness", "liveness", "liveness_checks"),
    ("aml", "aml", "aml_screening", "aml_screenings"),
)
# Feature blocks whose warnings are collected (ip_analysis: its codes only, never the address).
WARNING_FEATURES: tuple[tuple[str, str], ...] = (
    ("id_verification", "id_verifications"),
    ("face_match", "face_matches"),
    ("liveness", "liveness_checks"),
    ("aml_screening", "aml_screenings"),
    ("ip_analysis", "ip_analyses"),
)
# Feature block status (lower-cased) -> overview result word (GUESS, see the module doc).
FEATURE_RESULTS: dict[str, str] = {
    "approved": "pass",
    "declined": "fail",
    "in review": "review",
    "not started": "pending",
    "in progress": "pending",
    "pending": "pending",
}
AML_RESULTS: dict[str, str] = {"pass": "clear", "fail": "match"}
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")
_WORD = re.compile(r"[A-Za-z][A-Za-z _-]{0,31}")


class Gu1Adapter(ProviderAdapter[ApiKeySettings]):
    """Status check of one gu1 KYC validation."""

    name: ClassVar[str] = "gu1"
    env_prefix: ClassVar[str] = "GU1"
    settings_type = ApiKeySettings
    supports_sync: ClassVar[bool] = True

    def __init__(self, settings: ApiKeySettings) -> None:
        super().__init__(settings)
        self._api_key = require(self.name, settings.api_key, "GU1_API_KEY")
        self.statuses = STATUS_TABLE.with_extra(settings.status_map_extra)

    @classmethod
    def canonical_id(cls, external_id: object) -> str:
        return plain_id(external_id)

    def build_request(self, external_id: str, verification_type: str | None) -> ProviderRequest:
        url = provider_url(self.base_url, *VALIDATION_PATH, self.canonical_id(external_id))
        return ProviderRequest("GET", url, {"Authorization": f"Bearer {self._api_key}"})

    def build_sync_request(
        self, external_id: str, verification_type: str | None
    ) -> ProviderRequest:
        url = provider_url(self.base_url, *VALIDATION_PATH, self.canonical_id(external_id), "sync")
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
        }
        return ProviderRequest("POST", url, headers, SYNC_BODY)

    def interpret(self, response: ProviderResponse) -> PollResult:
        body = checked_json(self.name, response)
        word = status_word(self.name, body)
        status = self.statuses.lookup(word)
        return PollResult(
            status=status,
            provider_status=word,
            payload=body,
            summary=summarize(body),
            reverification=reverification_facts(body),
        )


def reverification_facts(validation: dict[str, Any]) -> ReverificationFacts | None:
    """needsReverification and expiresAt, if the validation says either."""
    flag = validation.get("needsReverification")
    expires_at = parse_time(validation.get("expiresAt"))
    if not isinstance(flag, bool) and expires_at is None:
        return None
    return ReverificationFacts(needs_reverification=flag is True, expires_at=expires_at)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as an aware datetime (GUESS: no zone is UTC); None if unreadable."""
    text = short_text(value, 40)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def summarize(validation: dict[str, Any]) -> dict[str, Any]:
    """Decision results, scores and warning codes; nothing from extractedData or media."""
    summary: dict[str, Any] = {}
    decision = validation.get("decision")
    decision = decision if isinstance(decision, dict) else {}
    nested = decision.get("verificationResults")
    overview = nested if isinstance(nested, dict) else {}
    scores: dict[str, float] = {}
    for key, overview_key, feature_key, alias in DECISION_CHECKS:
        block = _feature_block(decision, feature_key, alias)
        result = _word(decision.get(overview_key)) or _word(overview.get(overview_key))
        if result is None and block is not None:
            result = _feature_result(block.get("status"), aml=key == "aml")
        if result is not None:
            summary[key] = result
        score = block.get("score") if block is not None else None
        if isinstance(score, int | float) and not isinstance(score, bool):
            scores[key] = score
    if scores:
        summary["scores"] = scores
    warnings = _codes(validation.get("warnings"))
    for feature_key, alias in WARNING_FEATURES:
        block = _feature_block(decision, feature_key, alias)
        if block is not None:
            warnings.extend(_codes(block.get("warnings")))
    if warnings or "warnings" in validation:
        summary["warnings"] = list(dict.fromkeys(warnings))
    summary.update(_facts(validation))
    return summary


def _facts(validation: dict[str, Any]) -> dict[str, Any]:
    """The validation's ids and flags worth an app's while (no personal values)."""
    facts: dict[str, Any] = {}
    entity = short_text(validation.get("entityId"), 64)
    if entity is not None and _CODE.fullmatch(entity):
        facts["entity_id"] = entity
    for field, key in (
        ("needsReverification", "needs_reverification"),
        ("isCurrent", "is_current"),
    ):
        if isinstance(validation.get(field), bool):
            facts[key] = validation[field]
    if (expires_at := parse_time(validation.get("expiresAt"))) is not None:
        facts["expires_at"] = expires_at.isoformat()
    fields = validation.get("verifiedFields")
    if isinstance(fields, list):
        names = [f for f in fields if isinstance(f, str) and _FIELD.fullmatch(f)]
        facts["verified_fields"] = list(dict.fromkeys(names))[:MAX_VERIFIED_FIELDS]
    return facts


def _feature_block(decision: dict[str, Any], key: str, alias: str) -> dict[str, Any] | None:
    """The singular block, else the first element of its array alias."""
    block = decision.get(key)
    if isinstance(block, dict):
        return block
    items = decision.get(alias)
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return None


def _word(value: object) -> str | None:
    """A short result word (pass, clear, ...), lower-cased; anything else is ignored."""
    if isinstance(value, str) and _WORD.fullmatch(value.strip()):
        return value.strip().lower()
    return None


def _feature_result(value: object, *, aml: bool) -> str | None:
    word = _word(value)
    if word is None:
        return None
    result = FEATURE_RESULTS.get(word.replace("_", " "), word.replace(" ", "_"))
    return AML_RESULTS.get(result, result) if aml else result


def _codes(warnings: object) -> list[str]:
    """Warning codes: plain strings, or the risk/code field of warning objects."""
    if not isinstance(warnings, list):
        return []
    codes = []
    for warning in warnings:
        code = warning
        if isinstance(warning, dict):
            code = warning.get("risk") or warning.get("code")
        text = short_text(code)
        if text is not None and _CODE.fullmatch(text):
            codes.append(text)
    return codes


# --------------------------------------------------------------------------- webhooks
# docs.gu1.ai/en/webhooks/security and .../webhooks/events/kyc-events: an HMAC-SHA256 of the
# raw body with the webhook secret, hex, in X-Webhook-Signature; KYC events kyc.validation_*
# in {"event", "timestamp", "organizationId", "payload": {"validationId", "entityId", ...}}.
# GUESS: `timestamp` is ISO 8601 or Unix seconds/milliseconds (the docs show no example);
# a KYC event without a readable one is refused as malformed. Other event kinds are
# answered 200 and ignored (they name no validation).
WEBHOOK_EVENT_PREFIX = "kyc.validation_"


class Gu1Webhook(WebhookFormat):
    """gu1's KYC webhook: the validation it names may have changed (a hint, never the truth)."""

    scheme = HmacScheme("X-Webhook-Signature", "sha256", "hex")
    id_pointer = JsonPointer("/payload/validationId")

    def hint(self, document: dict[str, Any]) -> WebhookHint:
        event = document.get("event")
        if not isinstance(event, str) or not event.startswith(WEBHOOK_EVENT_PREFIX):
            raise WebhookRefused(Refusal.IGNORED_EVENT, "not a kyc.validation_* event")
        validation_id = self.id_pointer.resolve(document)
        if not isinstance(validation_id, str) or not 0 < len(validation_id) <= 128:
            raise WebhookRefused(Refusal.MALFORMED, "no payload.validationId string")
        sent_at = parse_timestamp(document.get("timestamp"))
        if sent_at is None:
            raise WebhookRefused(Refusal.MALFORMED, "no readable timestamp")
        return WebhookHint((validation_id,), event[:64], sent_at)


Gu1Adapter.webhook = Gu1Webhook()
