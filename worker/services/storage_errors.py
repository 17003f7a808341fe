"""Database failures turned into errors that are safe to log, and told apart: transient or not.

A database error's text can quote the data it was given (PostgreSQL quotes the
JSON around a bad byte; SQLAlchemy prints statement parameters unless told not
to), and Celery logs a failed task's exception text. `storage_errors()` replaces
any database error by one that names only its class, so no payload reaches a log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from worker.domain.errors import StorageError, StorageUnavailableError

__all__ = ["StorageError", "is_transient", "storage_errors"]


def is_transient(error: sa_exc.SQLAlchemyError) -> bool:
    """Connection lost or refused, server shutting down, a timeout or a deadlock."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


@contextmanager
def storage_errors() -> Iterator[None]:
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        name = type(getattr(error, "orig", None) or error).__name__
        if is_transient(error):
            raise StorageUnavailableError(f"database unavailable ({name})") from None
        raise StorageError(f"database error ({name}; details withheld)") from None
