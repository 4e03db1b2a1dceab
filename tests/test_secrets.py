"""Issue 11, "no password on disk": a storage URL's password never reaches a W&B run's files (W&B records the
command line and the job's process sees the URL in its environment), nor any message, even when the password
holds a space, an "@" or a ":" and the error quotes only part of the URL."""

from __future__ import annotations

import pytest

from tina_sweep.secrets import Secrets, mask_url

PASSWORD = "s3cret-Pa55"
URL = f"postgresql://tina:{PASSWORD}@localhost/db"

# --- mask_url: every URL's password in a text

@pytest.mark.parametrize("url, shown", [
    (URL, "postgresql://tina:***@localhost/db"),
    ("postgresql://tina:pa ss@host/db", "postgresql://tina:***@host/db"),  # a blank
    ("postgresql://tina:pa@ss@word@host:5432/db", "postgresql://tina:***@host:5432/db"),  # "@"s: up to the last
    ("postgresql://tina:pa:ss@host/db", "postgresql://tina:***@host/db"),  # a ":"
    ("postgresql://tina:pa%40ss%3A%20w@host/db", "postgresql://tina:***@host/db"),  # URL-encoded
    ("postgresql://tina:p@ss w:rd@host/db", "postgresql://tina:***@host/db"),  # all of them
    ("postgresql://:secret@host/db", "postgresql://:***@host/db"),  # no user
    ("postgresql+psycopg2://tina:pa/ss@host/db", "postgresql+psycopg2://tina:***@host/db"),
    ("postgresql://tina@host/db?sslmode=require&password=s3cret",
     "postgresql://tina@host/db?sslmode=require&password=***"),
    ("postgresql://tina@host/db?PASSWORD=s3cret&sslmode=require",
     "postgresql://tina@host/db?PASSWORD=***&sslmode=require"),
    ("postgresql://tina@host/db?password=pa'ss w&sslmode=require",  # a URL alone: to the next "&"
     "postgresql://tina@host/db?password=***&sslmode=require"),
    ("mysql+pymysql://tina@host/db?pwd=s%20cret", "mysql+pymysql://tina@host/db?pwd=***"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown
    assert mask_url(shown) == shown  # masking twice changes nothing


@pytest.mark.parametrize("url", ["postgresql://tina@host/db", "postgresql://host:5432/db", "sqlite:///ledger.db",
                                 "postgresql://tina@host:5432/db?sslmode=require", "sweeps/smoke/ledger.journal"])
def test_mask_url_leaves_urls_without_a_password_alone(url):
    assert mask_url(url) == url  # what tina_sweep.launch reads as "no password to hide"


def test_mask_url_in_a_message():
    assert mask_url("cannot open postgresql://tina:pa ss@host:1/db: connection refused") == \
        "cannot open postgresql://tina:***@host:1/db: connection refused"
    assert mask_url("from postgresql://a:p1@h1/db to postgresql://b:p 2@h2/db, twice") == \
        "from postgresql://a:***@h1/db to postgresql://b:***@h2/db, twice"
    assert mask_url("postgresql://host:5432/db and postgresql://u:p w@h/db") == \
        "postgresql://host:5432/db and postgresql://u:***@h/db"
    assert mask_url("'postgresql://tina@host/db?password=s3cret' refused") == \
        "'postgresql://tina@host/db?password=***' refused"


# --- Secrets: the password we were given, wherever it shows, whole or in part

def test_secrets_mask_the_parts_a_driver_quotes():
    secrets = Secrets.from_url("postgresql://tina:pa@ssword@127.0.0.1:1/db")
    assert secrets.mask('could not translate host name "ssword@127.0.0.1" to address') == \
        'could not translate host name "***@127.0.0.1" to address'
    two = Secrets.from_url("postgresql://tina:pa@ss@word@127.0.0.1:1/db")
    assert two.mask('host name "ss@word@127.0.0.1"; then "word@127.0.0.1"') == \
        'host name "***@127.0.0.1"; then "***@127.0.0.1"'
    # a short part is masked only before an "@" (where a host name shows it), not in every word
    short = Secrets.from_url("postgresql://tina:secret@x@127.0.0.1/db")
    assert short.mask('host name "x@127.0.0.1": exit') == 'host name "***@127.0.0.1": exit'


def test_secrets_mask_the_password_outside_any_url():
    secrets = Secrets.from_url("postgresql://tina:pa%40ss%20word@host/db")  # URL-encoded
    assert secrets.mask("password 'pa@ss word' was refused; pa%40ss%20word too") == \
        "password '***' was refused; *** too"
    blank = Secrets.from_url("postgresql://tina:pa ss@host/db")
    assert blank.mask("auth failed for 'pa ss'") == "auth failed for '***'"
    query = Secrets.from_url("postgresql://tina@host/db?password=pa'ss w&sslmode=require")
    assert "ss w" not in query.mask("postgresql://tina@host/db?password=pa'ss w&sslmode=require: refused")
    assert Secrets.from_url("--storage=postgresql://tina:s3cret@host/db").passwords == ("s3cret",)


def test_secrets_without_a_password():
    for url in (None, "", "postgresql://tina@host/db", "sweeps/smoke/ledger.journal"):
        secrets = Secrets.from_url(url)
        assert not secrets and secrets.passwords == ()
        assert secrets.mask("tina at postgresql://a:b@c/db") == "tina at postgresql://a:***@c/db"  # still mask_url
