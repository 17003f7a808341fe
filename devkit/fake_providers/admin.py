"""The admin API, so another process (a Celery worker, the demo) can script the fakes.

POST /_fake/sessions {"provider", "id", "script", "type"?}  -> 201 the session
GET  /_fake/sessions/{provider}/{id}                       -> {"requests": n, ...}
GET  /_fake/health                                         -> {"ok": true, ...}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import unquote

from devkit.fake_providers.wire import Reply, Request, json_reply

if TYPE_CHECKING:
    from devkit.fake_providers.app import FakeApp


def handle_admin(app: FakeApp, request: Request) -> Reply:
    parts = [unquote(part) for part in request.path.split("/")[2:]]
    if parts == ["health"] and request.method == "GET":
        return json_reply(200, {"ok": True, "providers": list(app.providers)})
    if parts == ["sessions"] and request.method == "POST":
        return _add_session(app, request)
    if len(parts) == 3 and parts[0] == "sessions" and request.method == "GET":
        described = app.store.describe(parts[1], parts[2])
        if described is None:
            return json_reply(404, {"error": f"no {parts[1]} session {parts[2]!r}"})
        return json_reply(200, described)
    return json_reply(404, {"error": "no such admin endpoint"})


def _add_session(app: FakeApp, request: Request) -> Reply:
    try:
        document = json.loads(request.body or b"null")
    except ValueError:
        return json_reply(400, {"error": "the body must be JSON"})
    if not isinstance(document, dict):
        return json_reply(400, {"error": "the body must be a JSON object"})
    try:
        described = app.add_session(
            document.get("provider"),  # type: ignore[arg-type]
            document.get("id"),  # type: ignore[arg-type]
            document.get("script"),
            document.get("type"),
        )
    except ValueError as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(201, described)
