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


def capture_stdlib(monkeypatch, emit) -> list[dict]:
    import logging

    monkeypatch.setenv("GU1_API_KEY", "gu1-key-0123456789")
    buffer = io.StringIO()
    with redirect_stderr(buffer):
        configure_logging("json", "INFO")
        emit(logging.getLogger("celery.worker.consumer"))
    structlog.reset_defaults()
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_the_standard_librarys_records_pass_the_same_redaction(monkeypatch):
    def emit(logger):
        logger.info("Connected to redis://:broker-pw@redis:6379/0")
        logger.warning("a provider said %s", "gu1-key-0123456789")
        try:
            raise RuntimeError("key gu1-key-0123456789 refused")
        except RuntimeError:
            logger.exception("task failed")

    lines = capture_stdlib(monkeypatch, emit)
    text = json.dumps(lines)
    assert "broker-pw" not in text and "gu1-key-0123456789" not in text
    assert lines[0]["event"] == "Connected to redis://***@redis:6379/0"
    assert lines[0]["logger"] == "celery.worker.consumer" and lines[1]["level"] == "warning"
    assert "RuntimeError" in lines[2]["exception"] and "***" in lines[2]["exception"]


def test_structlog_lines_mask_secret_values_in_free_text(monkeypatch):
    monkeypatch.setenv("NOTUS_API_KEY", "notus-key-abcdef")
    line = json.loads(capture("json", note="sent notus-key-abcdef to postgresql://u:pw@db/x"))
    assert line["note"] == "sent *** to postgresql://***@db/x"


class RecordingStream(io.StringIO):
    """Keeps every `write` call apart, to see whether a record can be split between calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_every_record_is_one_whole_line_in_one_write_from_many_threads():
    # A record printed as message then newline lets another thread's record land between the
    # two: two JSON objects on one line, which a log shipper drops (seen with Celery threads).
    import logging
    import threading

    stream = RecordingStream()
    with redirect_stderr(stream):
        configure_logging("json", "INFO")

        def work(n: int) -> None:
            for i in range(50):
                structlog.get_logger("test").info("structured", n=n, i=i)
                logging.getLogger("celery.app.trace").info("stdlib %s %s", n, i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    structlog.reset_defaults()
    logging.getLogger().handlers = []
    writes = [w for w in stream.writes if w]
    assert len(writes) == 4 * 50 * 2
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in writes)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sum(r["event"] == "structured" for r in records) == 200
