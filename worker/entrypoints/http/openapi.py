"""The API's OpenAPI 3.1 document (served at /openapi.json; /docs renders it offline)."""

from __future__ import annotations

from typing import Any

from worker.adapters.registry import PROVIDER_NAMES
from worker.domain.statuses import VerificationStatus

_ERROR = {"$ref": "#/components/schemas/Error"}


def _response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema or _ERROR}}
    return {"description": description, "content": content}


_AUTH_ERRORS = {
    "401": _response("No token, an unknown one, or a revoked one (`error`: unauthorized, revoked)"),
    "403": _response("The token lacks the scope this call needs"),
    "503": _response("The database or Redis is unavailable: retry later"),
}
_REF = [
    {
        "name": "provider",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(PROVIDER_NAMES)},
    },
    {
        "name": "external_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "maxLength": 128},
        "description": "The provider's id (a Predicate UUID in any case)",
    },
]


def document() -> dict[str, Any]:
    statuses = [status.value for status in VerificationStatus]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kyc-poller",
            "version": "1",
            "description": (
                "Track KYC verifications and read their decisions. Every call needs "
                "`Authorization: Bearer <token>`; scopes: `track` (track, poll-now), `read` "
                "(status, history). Provider webhooks are received at POST /webhooks/{provider} "
                "(signed by the provider, no token)."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                },
                "TrackRequest": {
                    "type": "object",
                    "required": ["provider", "external_id"],
                    "additionalProperties": False,
                    "properties": {
                        "provider": {"type": "string", "enum": list(PROVIDER_NAMES)},
                        "external_id": {"type": "string", "maxLength": 128},
                        "verification_type": {
                            "type": ["string", "null"],
                            "description": "Predicate: individual (default) or business",
                        },
                    },
                },
                "Tracked": {
                    "type": "object",
                    "properties": {
                        "verification_id": {"type": "integer"},
                        "created": {"type": "boolean"},
                        "status": {"type": "string", "enum": statuses},
                        "provider": {"type": "string"},
                        "external_id": {"type": "string", "description": "canonical form"},
                    },
                },
                "Status": {
                    "type": "object",
                    "description": "What an app needs to check before allowing an action. "
                    "Never the provider's raw answer.",
                    "properties": {
                        "verification_id": {"type": "integer"},
                        "provider": {"type": "string"},
                        "external_id": {"type": "string"},
                        "verification_type": {"type": ["string", "null"]},
                        "status": {"type": "string", "enum": statuses},
                        "since": {"type": ["string", "null"], "format": "date-time"},
                        "terminal": {"type": "boolean"},
                        "summary": {"type": "object", "description": "non-personal summary"},
                        "last_error_code": {"type": ["string", "null"]},
                        "updated_at": {"type": ["string", "null"], "format": "date-time"},
                        "version": {"type": "integer"},
                    },
                },
                "History": {
                    "type": "object",
                    "properties": {
                        "verification_id": {"type": "integer"},
                        "status": {"type": "string"},
                        "transitions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "version": {"type": "integer"},
                                    "from_status": {"type": "string"},
                                    "to_status": {"type": "string"},
                                    "provider_status": {"type": ["string", "null"]},
                                    "reason": {"type": "string"},
                                    "error_code": {"type": ["string", "null"]},
                                    "occurred_at": {"type": ["string", "null"]},
                                },
                            },
                        },
                    },
                },
                "Nudge": {
                    "type": "object",
                    "properties": {
                        "outcome": {
                            "type": "string",
                            "enum": ["scheduled", "collapsed", "terminal"],
                        },
                        "verification_id": {"type": "integer"},
                        "status": {"type": "string"},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/verifications": {
                "post": {
                    "summary": "Start tracking a verification (idempotent; scope track)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/TrackRequest"}
                            }
                        },
                    },
                    "responses": {
                        "201": _response("Now tracked", {"$ref": "#/components/schemas/Tracked"}),
                        "200": _response(
                            "Already tracked", {"$ref": "#/components/schemas/Tracked"}
                        ),
                        "400": _response("Not a JSON object, or unknown fields"),
                        "422": _response(
                            "Refused: unknown provider, bad id or type, a type "
                            "conflict (the reason is in `message`)"
                        ),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/v1/verifications/{provider}/{external_id}": {
                "get": {
                    "summary": "Its status: check before allowing an action (scope read)",
                    "parameters": _REF,
                    "responses": {
                        "200": _response("Tracked", {"$ref": "#/components/schemas/Status"}),
                        "404": _response("Not tracked"),
                        "422": _response("Unknown provider or an id it cannot have"),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/v1/verifications/{provider}/{external_id}/history": {
                "get": {
                    "summary": "Its transitions, oldest first (scope read)",
                    "parameters": [
                        *_REF,
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _response("Tracked", {"$ref": "#/components/schemas/History"}),
                        "404": _response("Not tracked"),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/v1/verifications/{provider}/{external_id}/poll-now": {
                "post": {
                    "summary": "Poll it within seconds; repeats within the collapse window "
                    "collapse into one poll (scope track)",
                    "parameters": _REF,
                    "responses": {
                        "200": _response("What happened", {"$ref": "#/components/schemas/Nudge"}),
                        "404": _response("Not tracked"),
                        **_AUTH_ERRORS,
                    },
                }
            },
        },
    }
