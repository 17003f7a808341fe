"""`with server:` for the devkit's servers: started on the way in, stopped on the way out."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartedInWith:
    """A server that `start`s and `stop`s; `with` starts it and stops it whatever happens.

    `stop` must be safe to call twice (a server stopped by hand, then by `with`)."""

    def start(self) -> Self:
        return self

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
