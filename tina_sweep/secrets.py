"""Keep passwords in storage URLs out of logs, reports and configs."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]*)(?P<tail>@)")


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", url)
