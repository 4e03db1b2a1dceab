"""Keep passwords in storage URLs out of logs, reports and configs.

``mask_url`` masks the password of every URL it finds in a text. An error message may quote only part of a URL,
though: SQLAlchemy reads a password up to its first "@", so ``postgresql://tina:pa@ssword@host/db`` has psycopg2
fail with ``could not translate host name "ssword@host"``, where no URL is left to find. ``Secrets``, built from
the storage URL we were given, masks the password itself wherever it shows, and the parts of it after an "@"."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus

STORAGE_ENV = "TINA_SWEEP_STORAGE"  # the real storage URL, when it carries a password

MASK = "***"

_SCHEME = r"\b[a-zA-Z][a-zA-Z0-9+.-]*://"
_KEYS = r"(?:password|passwd|pwd|pass)"
# scheme://[user]:password@host -- the password runs to the last "@" of the URL (an unescaped "@" in a password
# is common), and the user may be empty (postgresql://:secret@host). In a text, a password is first read without
# blanks; failing that, one with blanks (``postgresql://tina:pa ss@host``) runs to the line's last "@" (masking
# too much of a line that holds such a URL beats showing half a password)
_PASSWORD = re.compile(rf"(?P<head>{_SCHEME}[^:/@\s]*:)(?P<password>\S*|(?:(?!://)[^\r\n])*)(?P<tail>@[^@\s]*)")
# ...?password=secret (libpq and most drivers accept the password as a query parameter too)
_QUERY_PASSWORD = re.compile(rf"(?P<head>[?&]{_KEYS}=)(?P<password>[^&\s'\"]*)", re.IGNORECASE)
# A text that is one URL (a --storage value): its password runs to its last "@" and a query parameter's to the
# next "&", blanks, quotes and all
_ONE_URL = re.compile(rf"\s*{_SCHEME}\S[^\r\n]*")
_URL_PASSWORD = re.compile(rf"(?P<head>{_SCHEME}[^:/@\s]*:)(?P<password>(?:(?!://)[^\r\n])*)(?P<tail>@[^@\r\n]*)")
_URL_QUERY_PASSWORD = re.compile(rf"(?P<head>[?&]{_KEYS}=)(?P<password>[^&\r\n]*)", re.IGNORECASE)
# parts of a password shorter than this are masked only where they stand before an "@" (as in a host name), so
# that a short one does not mask every word it happens to be part of
_SHORT = 4


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``; also ``?password=secret``. Works on
    any text holding such URLs (an error message, say); a text that starts with a URL is read as one URL."""
    password, query = (_URL_PASSWORD, _URL_QUERY_PASSWORD) if _ONE_URL.fullmatch(url) else \
        (_PASSWORD, _QUERY_PASSWORD)
    masked = password.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", url)
    return query.sub(lambda m: f"{m['head']}{MASK}", masked)


def mask_storage(storage: str) -> str:
    """A storage URL, printable: ``mask_url``, and its password masked wherever else it shows (a query parameter
    holding a blank or a quote, say)."""
    return Secrets.from_url(storage).mask(storage)


def url_passwords(url: str) -> list[str]:
    """The passwords a URL carries (in its user part, read as ``mask_url`` reads it, and as a query parameter), as
    written and decoded. ``url`` may have text before it (``--storage=postgresql://...``)."""
    start = re.search(_SCHEME, url)
    if not start:
        return []
    url = url[start.start():].strip()
    user = _URL_PASSWORD.match(url)
    found = ([user["password"]] if user else []) + [m["password"] for m in _URL_QUERY_PASSWORD.finditer(url)]
    passwords = []
    for password in found:
        for form in (password, unquote(password), unquote_plus(password)):
            if form and form not in passwords:
                passwords.append(form)
    return passwords


class Secrets:
    """Known passwords, masked wherever they show in a text, whole or in part: every part of one after an "@"
    too (the host name a driver reports when it split the URL at the password's first "@")."""

    def __init__(self, passwords: Iterable[str] = ()):
        parts = set()
        for password in passwords:
            parts.add(password)
            pieces = password.split("@")
            parts.update("@".join(pieces[i:]) for i in range(1, len(pieces)))
        parts.discard("")
        # longest first, so that a password is masked whole before any part of it is
        ordered = sorted(parts, key=lambda part: (-len(part), part))
        long = [re.escape(part) for part in ordered if len(part) >= _SHORT]
        short = [re.escape(part) for part in ordered if len(part) < _SHORT]
        patterns = ([f"(?:{'|'.join(long)})"] if long else []) + ([f"(?:{'|'.join(short)})(?=@)"] if short else [])
        self.passwords = tuple(ordered)
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    @classmethod
    def from_url(cls, *urls: str | None) -> Secrets:
        """The passwords of the given storage URLs (None and URLs without a password add none)."""
        return cls(password for url in urls if url for password in url_passwords(url))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        """``text`` with every known password (and part of one after an "@") masked, then every URL's password."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return mask_url(text)
