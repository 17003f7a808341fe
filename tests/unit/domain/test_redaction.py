"""The one redactor: URLs and texts lose their credentials before anyone sees them."""

from __future__ import annotations

from worker.domain.redaction import Scrubber, one_line, redact_url, url_origin


def test_urls_lose_their_passwords():
    assert redact_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert (
        redact_url("postgresql+psycopg://kyc:s3cret@db:5432/kyc")
        == "postgresql+psycopg://kyc:***@db:5432/kyc"
    )
    assert redact_url("https://token@example.com/x") == "https://***@example.com/x"
    assert redact_url("sqlite:///var/kyc.db") == "sqlite:///var/kyc.db"
    assert redact_url("redis://u:pw@[::1]:6379/0") == "redis://u:***@[::1]:6379/0"
    assert url_origin("https://user:pw@api.example.com:8443/v1?key=k") == (
        "https://api.example.com:8443"
    )


def test_the_scrubber_removes_secret_values_and_url_user_info():
    scrub = Scrubber.from_env(
        {
            "GU1_API_KEY": "gu1-key-123",
            "BANK131_RSA_PRIVATE_KEY": "-----BEGIN KEY-----\\nabc\\n-----END KEY-----",
            "KYC_DATABASE_URL": "postgresql://kyc:dbpass@db/kyc",
            "KYC_POLL_BATCH_SIZE": "100",
        }
    )
    text = "key gu1-key-123, url ftp://u:p@h/x, db dbpass, batch 100"
    assert scrub(text) == "key ***, url ftp://***@h/x, db ***, batch 100"
    assert "abc" not in scrub("-----BEGIN KEY-----\nabc\n-----END KEY-----")


def test_the_scrubber_from_urls_takes_their_passwords_only():
    scrub = Scrubber.from_urls(["redis://:redis-secret@h/0", "sqlite:///x.db", "not a url"])
    assert scrub("AuthenticationError: redis-secret refused") == "AuthenticationError: *** refused"


def test_one_line_collapses_and_bounds():
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000, 50)) == 50
