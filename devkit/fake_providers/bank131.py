"""Fake Bank131: /api/v1.1/check/{id} (GET or POST) and /api/v2.0/check/{id} (GET), with
X-PARTNER-PROJECT (and X-PARTNER-SIGN). v1.1 takes both methods, as bank131.txt shows
(GET on the stage host, POST on the live one); v2.0 is documented with GET on both
hosts (developer.131.ru/en/verification/verification-status), so a POST there is a 405.
Both versions answer the same way.

Status steps are "ok", "pending" or "error:<code>"; {"status": "error:already_exists",
"earlier_id": "7"} names the earlier check, and any step may set "http_status"
(error answers default to HTTP 200, as documented). An unknown project or a bad
signature is refused with Bank131's own error JSON and HTTP 403
(`partner_project_not_found`, then `invalid_sign`).

The signature is checked as `credentials.bank131_signing_mode` says, independently
of the adapter's code (worker.adapters.bank131_signing):
- `none` (default): not checked; an X-PARTNER-SIGN sent anyway is ignored;
- `rsa`: X-PARTNER-SIGN is standard base64 of an RSASSA-PKCS1-v1_5 SHA-256
  signature of the request body as received (empty for the status check),
  verified with the configured public key;
- `hmac` (kyc-poller's test scheme, not Bank131's): hex HMAC-SHA256(secret,
  "METHOD\\npath\\nbody") over the path as received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devkit.fake_providers.credentials import FakeCredentials
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

# bank131.txt's answers: "ok", "pending", or "error" with one of the documented codes.
DOCUMENTED_STATUSES = ("ok", "pending", *(f"error:{code}" for code in ERROR_DESCRIPTIONS))


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
    route_pattern = re.compile(r"/api/(?P<version>v1\.1|v2\.0)/check/(?P<id>[^/]+)")
    # Methods per API version (the provider-wide `methods` is their union).
    version_methods = {"v1.1": frozenset({"GET", "POST"}), "v2.0": frozenset({"GET"})}

    def __init__(self, credentials: FakeCredentials) -> None:
        super().__init__(credentials)
        self.signing_mode = credentials.bank131_signing_mode
        self._public_key: rsa.RSAPublicKey | None = (
            credentials.bank131_public_key() if self.signing_mode == "rsa" else None
        )

    def allowed_methods(self, path: str) -> frozenset[str]:
        match = self.route_pattern.fullmatch(path)
        return self.version_methods[match["version"]] if match else self.methods

    def check_auth(self, request: Request) -> Reply | None:
        if not secret_matches(
            request.header("x-partner-project"), self.credentials.bank131_project
        ):
            return json_reply(403, error_body("partner_project_not_found"))
        if not self.signature_valid(request):
            return json_reply(403, error_body("invalid_sign"))
        return None

    def signature_valid(self, request: Request) -> bool:
        if self.signing_mode == "none":
            return True
        given = request.header("x-partner-sign")
        if given is None:
            return False
        if self.signing_mode == "hmac":
            message = b"%s\n%s\n%s" % (request.method.encode(), request.path.encode(), request.body)
            expected = hmac.new(
                self.credentials.bank131_signing_secret.encode(), message, hashlib.sha256
            ).hexdigest()
            return secret_matches(given, expected)
        assert self._public_key is not None
        try:
            signature = base64.b64decode(given.strip(), validate=True)
            self._public_key.verify(signature, request.body, padding.PKCS1v15(), hashes.SHA256())
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True

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
