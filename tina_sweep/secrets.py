"""Keep passwords in storage URLs out of logs, reports and configs."""

from __future__ import annotations

import re

# scheme://[user]:password@host -- the password runs to the last "@" of the URL (an unescaped "@" in a password
# is common), and the user may be empty (postgresql://:secret@host)
_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<password>[^\s]*)(?P<tail>@[^@\s]*)")
# ...?password=secret (libpq and most drivers accept the password as a query parameter too)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd|pass)=)(?P<password>[^&\s'\"]*)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``; also ``?password=secret``. Works on
    any text holding such URLs (an error message, say)."""
    masked = _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", url)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", masked)

