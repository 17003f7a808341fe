"""Routes one request to the right fake provider (or the admin API) and scripts its answer.

Independent of the HTTP server: `dispatch` takes a `Request` and returns a
`Reply`, so the routing and auth rules are plain code.
"""

from __future__ import annotations

from typing import Any

from devkit.fake_providers.admin import handle_admin
from devkit.fake_providers.bank131 import Bank131Fake
from devkit.fake_providers.credentials import FakeCredentials
from devkit.fake_providers.gu1 import Gu1Fake
from devkit.fake_providers.notus import NotusFake
from devkit.fake_providers.predicate import PredicateFake
from devkit.fake_providers.provider import FakeProvider
from devkit.fake_providers.state import SessionStore
from devkit.fake_providers.steps import parse_script
from devkit.fake_providers.wire import Reply, Request, json_reply

PROVIDER_CLASSES: tuple[type[FakeProvider], ...] = (NotusFake, Bank131Fake, Gu1Fake, PredicateFake)
PROVIDER_NAMES = tuple(cls.name for cls in PROVIDER_CLASSES)
PREDICATE_TYPES = ("individual", "business")
ADMIN_PREFIX = "/_fake"


class FakeApp:
    """All four fake providers and their scripted sessions."""

    def __init__(self, credentials: FakeCredentials | None = None) -> None:
        self.credentials = credentials or FakeCredentials()
        self.store = SessionStore()
        self.providers: dict[str, FakeProvider] = {
            cls.name: cls(self.credentials) for cls in PROVIDER_CLASSES
        }

    def provider(self, name: object) -> FakeProvider:
        provider = self.providers.get(name) if isinstance(name, str) else None
        if provider is None:
            raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}")
        return provider

    def add_session(
        self,
        provider: str,
        session_id: str,
        script: object,
        verification_type: str | None = None,
    ) -> dict[str, Any]:
        """Create (or replace) a session; ValueError says what is wrong with the arguments."""
        fake = self.provider(provider)
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("a session id must be a non-empty string")
        if verification_type is not None and not isinstance(verification_type, str):
            raise ValueError("a verification type must be a string")
        if fake.name == "predicate" and verification_type not in (None, *PREDICATE_TYPES):
            raise ValueError(f"predicate types are {', '.join(PREDICATE_TYPES)}")
        steps = parse_script(script)
        session = self.store.add(
            fake.name, session_id, steps, verification_type or fake.default_type
        )
        return session.describe()

    def dispatch(self, request: Request) -> Reply:
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return handle_admin(self, request)
        name, _, rest = request.path.lstrip("/").partition("/")
        provider = self.providers.get(name)
        route = provider.route("/" + rest) if provider is not None else None
        if provider is None or route is None:
            return json_reply(404, {"error": "no such endpoint on the fake providers"})
        if request.method not in provider.methods:
            allow = ", ".join(sorted(provider.methods))
            return json_reply(405, {"error": "method not allowed"}, {"Allow": allow})
        refusal = provider.check_auth(request)
        if refusal is not None:
            return refusal
        typed = route.verification_type if provider.default_type is not None else None
        taken = self.store.take(provider.name, route.session_id, typed)
        if taken is None:
            return provider.render_not_found(route)
        if taken.step.fault is not None:
            return provider.render_fault(route, taken.step, taken.status)
        assert taken.status is not None
        return provider.render(route, taken.status, taken.step)
