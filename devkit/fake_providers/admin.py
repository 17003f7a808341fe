"""The admin API, so another process (a Celery worker, the demo, a benchmark) can script the fakes.

POST /_fake/sessions {"provider", "id", "script", "type"?, "loop"?} -> 201 the session
POST /_fake/sessions/batch {"sessions": [session, ...]}            -> 201 {"created": n}
                                                                      (all or none)
GET  /_fake/sessions/{provider}/{id}                               -> {"requests": n, ...}
GET  /_fake/latency                                                -> {"latency_ms", "jitter_ms"}
PUT  /_fake/latency {"latency_ms"?, "jitter_ms"?}                  -> 200 the new latency
GET  /_fake/health                                                 -> {"ok": true, ...}

Admin requests are answered at once: the latency applies to the provider endpoints only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from devkit.fake_providers.latency import Latency
from devkit.fake_providers.wire import Reply, Request, json_reply

if TYPE_CHECKING:
    from devkit.fake_providers.app import FakeApp


def handle_admin(app: FakeApp, request: Request) -> Reply:
    parts = [unquote(part) for part in request.path.split("/")[2:]]
    if parts == ["health"] and request.method == "GET":
        return json_reply(
            200, {"ok": True, "providers": list(app.providers), **app.latency.to_json()}
        )
    if parts == ["sessions"] and request.method == "POST":
        return _add_session(app, request)
    if parts == ["sessions", "batch"] and request.method == "POST":
        return _add_sessions(app, request)
    if len(parts) == 3 and parts[0] == "sessions" and request.method == "GET":
        described = app.store.describe(parts[1], parts[2])
        if described is None:
            return json_reply(404, {"error": f"no {parts[1]} session {parts[2]!r}"})
        return json_reply(200, described)
    if parts == ["latency"] and request.method == "GET":
        return json_reply(200, app.latency.to_json())
    if parts == ["latency"] and request.method in {"PUT", "POST"}:
        return _set_latency(app, request)
    return json_reply(404, {"error": "no such admin endpoint"})


class _BadBody(ValueError):
    pass


def _json_object(request: Request) -> dict[str, Any]:
    try:
        document = json.loads(request.body or b"null")
    except ValueError:
        raise _BadBody("the body must be JSON") from None
    if not isinstance(document, dict):
        raise _BadBody("the body must be a JSON object")
    return document


def _add_session(app: FakeApp, request: Request) -> Reply:
    try:
        document = _json_object(request)
        described = app.add_session(
            document.get("provider"),  # type: ignore[arg-type]
            document.get("id"),  # type: ignore[arg-type]
            document.get("script"),
            document.get("type"),
            loop=document.get("loop", False),
        )
    except ValueError as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(201, described)


def _add_sessions(app: FakeApp, request: Request) -> Reply:
    try:
        created = app.add_sessions(_json_object(request).get("sessions"))
    except ValueError as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(201, {"created": created})


def _set_latency(app: FakeApp, request: Request) -> Reply:
    try:
        app.latency = Latency.from_json(_json_object(request), app.latency)
    except ValueError as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(200, app.latency.to_json())
