"""Routes one request to the right fake provider (or the admin API) and scripts its answer.

Independent of the HTTP server: `dispatch` takes a `Request` and returns a
`Reply`, so the routing and auth rules are plain code. The latency (see
fake_providers.latency) is part of the reply (`Reply.delay`): each server waits
it out its own way (a sleeping thread, or an asyncio sleep).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from devkit.fake_providers.admin import handle_admin
from devkit.fake_providers.bank131 import Bank131Fake
from devkit.fake_providers.credentials import FakeCredentials
from devkit.fake_providers.gu1 import Gu1Fake
from devkit.fake_providers.latency import Latency
from devkit.fake_providers.notus import NotusFake
from devkit.fake_providers.predicate import PredicateFake
from devkit.fake_providers.provider import FakeProvider
from devkit.fake_providers.state import SessionStore
from devkit.fake_providers.steps import Step, parse_script
from devkit.fake_providers.streams import FakeStreams
from devkit.fake_providers.wire import Reply, Request, json_reply

PROVIDER_CLASSES: tuple[type[FakeProvider], ...] = (NotusFake, Bank131Fake, Gu1Fake, PredicateFake)
PROVIDER_NAMES = tuple(cls.name for cls in PROVIDER_CLASSES)
PREDICATE_TYPES = ("individual", "business")
ADMIN_PREFIX = "/_fake"


class FakeApp:
    """All four fake providers and their scripted sessions."""

    def __init__(
        self, credentials: FakeCredentials | None = None, latency: Latency | None = None
    ) -> None:
        self.credentials = credentials or FakeCredentials()
        self.store = SessionStore()
        self.providers: dict[str, FakeProvider] = {
            cls.name: cls(self.credentials) for cls in PROVIDER_CLASSES
        }
        # Replaced whole (never mutated), so a request reads a consistent pair.
        self.latency = latency or Latency()
        self._rng = random.Random()
        # Predicate's status streams (served by the aio server: fake_providers.streams).
        self.streams = FakeStreams(self)

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
        *,
        loop: object = False,
    ) -> dict[str, Any]:
        """Create (or replace) a session; ValueError says what is wrong with the arguments.

        `loop`: start the script over after its last step (default: repeat the last step).
        """
        name, checked_id, steps, checked_type, looping = self._prepare(
            provider, session_id, script, verification_type, loop
        )
        return self.store.add(name, checked_id, steps, checked_type, loop=looping).describe()

    def add_sessions(self, documents: object) -> int:
        """Create (or replace) many sessions at once, all or none: a list of admin API
        session objects {"provider", "id", "script", "type"?, "loop"?}. Returns how many."""
        if isinstance(documents, str | bytes) or not isinstance(documents, list):
            raise ValueError("'sessions' must be a list of session objects")
        prepared = []
        for index, document in enumerate(documents):
            if not isinstance(document, dict):
                raise ValueError(f"session {index}: must be a JSON object")
            try:
                prepared.append(
                    self._prepare(
                        document.get("provider"),
                        document.get("id"),
                        document.get("script"),
                        document.get("type"),
                        document.get("loop", False),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"session {index}: {exc}") from None
        for provider, session_id, steps, verification_type, loop in prepared:
            self.store.add(provider, session_id, steps, verification_type, loop=loop)
        return len(prepared)

    def _prepare(
        self,
        provider: object,
        session_id: object,
        script: object,
        verification_type: object,
        loop: object,
    ) -> tuple[str, str, tuple[Step, ...], str | None, bool]:
        """Validated arguments for SessionStore.add; ValueError says what is wrong."""
        fake = self.provider(provider)
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("a session id must be a non-empty string")
        if verification_type is not None and not isinstance(verification_type, str):
            raise ValueError("a verification type must be a string")
        if fake.name == "predicate" and verification_type not in (None, *PREDICATE_TYPES):
            raise ValueError(f"predicate types are {', '.join(PREDICATE_TYPES)}")
        if not isinstance(loop, bool):
            raise ValueError("loop must be true or false")
        steps = parse_script(script)
        return fake.name, session_id, steps, verification_type or fake.default_type, loop

    def dispatch(self, request: Request) -> Reply:
        """The answer to one request; every provider answer (not the admin API's) is delayed
        by the latency, on top of a scripted delay."""
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return handle_admin(self, request)
        reply = self._provider_reply(request)
        latency = self.latency
        if not latency.enabled:
            return reply
        return dataclasses.replace(reply, delay=reply.delay + latency.sample(self._rng))

    def _provider_reply(self, request: Request) -> Reply:
        name, _, rest = request.path.lstrip("/").partition("/")
        provider = self.providers.get(name)
        if provider is not None:
            action = provider.handle_action("/" + rest, request, self.store)
            if action is not None:
                return action
        route = provider.route("/" + rest) if provider is not None else None
        if provider is None or route is None:
            return json_reply(404, {"error": "no such endpoint on the fake providers"})
        methods = provider.allowed_methods("/" + rest)
        if request.method not in methods:
            allow = ", ".join(sorted(methods))
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
