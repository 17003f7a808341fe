import io
import json
from contextlib import redirect_stderr

import structlog

from worker.adapters.logs import REDACTED, configure_logging


def capture(log_format: str, **fields) -> str:
    buffer = io.StringIO()
    with redirect_stderr(buffer):
        configure_logging(log_format, "INFO")
        structlog.get_logger("test").info("something_happened", **fields)
    structlog.reset_defaults()
    return buffer.getvalue()


def test_json_lines_carry_the_bound_verification_and_provider():
    line = capture("json", verification_id=12, provider="gu1", status="approved")
    record = json.loads(line)
    assert record["event"] == "something_happened"
    assert (record["verification_id"], record["provider"], record["status"]) == (
        12,
        "gu1",
        "approved",
    )
    assert record["level"] == "info" and "timestamp" in record


def test_context_bound_for_a_task_reaches_every_line():
    buffer = io.StringIO()
    with redirect_stderr(buffer):
        configure_logging("json", "INFO")
        with structlog.contextvars.bound_contextvars(verification_id=5, provider="notus"):
            structlog.get_logger("test").info("inside")
    structlog.reset_defaults()
    record = json.loads(buffer.getvalue())
    assert (record["verification_id"], record["provider"]) == (5, "notus")


def test_secrets_and_personal_data_never_reach_the_log():
    line = capture(
        "json",
        api_key="sk-live-123",
        headers={"Authorization": "Bearer tok-456", "X-PARTNER-SIGN": "abcdef"},
        signature="deadbeef",
        firstName="Alice",
        birth_date="1852-05-04",
        payload={"session": {"lastName": "Liddell"}},
        status="pending",
    )
    for secret in (
        "sk-live-123",
        "tok-456",
        "deadbeef",
        "abcdef",
        "Alice",
        "1852-05-04",
        "Liddell",
    ):
        assert secret not in line
    record = json.loads(line)
    assert record["api_key"] == REDACTED and record["status"] == "pending"
    assert record["headers"]["Authorization"] == REDACTED


def test_console_format_is_readable_text():
    line = capture("console", verification_id=3, provider="notus")
    assert "something_happened" in line and "verification_id" in line
    assert not line.lstrip().startswith("{")
