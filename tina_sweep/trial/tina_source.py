"""Tina's own words: text quoted verbatim from the Tina repository (github.com/shangshang-wang/Tina), each quote
with the commit, file and first line it comes from (``data/reference/tina_source/*.json``).

Fidelity tests read the values they check from these quotes -- parsing the quoted YAML, Python literal or shell
text -- never from our own transcription of them. A quote's ``text`` is the exact text of lines
``first_line`` .. ``last_line`` of ``file`` at ``commit`` (newline-joined, without the final newline).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tina_sweep.trial.datasets import bundled_path

REPOSITORY = "shangshang-wang/Tina"
# The two eras of the repository (issue 12): the paper-era commit and the "latest clean version".
PAPER_ERA_COMMIT = "077329b0d8bd31bd1b2b1808b0afa0113d475bb5"

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Quote:
    """Lines ``first_line`` .. ``last_line`` of ``file`` at ``commit`` of the Tina repository, verbatim."""

    key: str
    commit: str
    file: str
    first_line: int
    text: str
    note: str = ""

    @property
    def last_line(self) -> int:
        return self.first_line + self.text.count("\n")

    @property
    def where(self) -> str:
        """``file:first-last @ commit`` (short commit), for documents and error messages."""
        lines = f"{self.first_line}" if self.last_line == self.first_line else f"{self.first_line}-{self.last_line}"
        return f"{self.file}:{lines} @ {self.commit[:7]}"

    @property
    def url(self) -> str:
        return (f"https://github.com/{REPOSITORY}/blob/{self.commit}/{self.file}"
                f"#L{self.first_line}-L{self.last_line}")

    def python_value(self) -> Any:
        """The value of the quoted Python: a literal expression, or the right side of a single assignment
        (``NAME = \"\"\"...\"\"\"``), evaluated as Python would (escapes such as ``\\n`` become characters)."""
        tree = ast.parse(self.text)
        if len(tree.body) != 1:
            raise ValueError(f"{self.key}: expected one statement in {self.where}, got {len(tree.body)}")
        node = tree.body[0]
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            return ast.literal_eval(node.value)
        if isinstance(node, ast.Expr):
            return ast.literal_eval(node.value)
        raise ValueError(f"{self.key}: {self.where} is not a literal or an assignment of one")

    def yaml_value(self) -> Any:
        """The quoted YAML, parsed (a mapping for ``key: value`` lines)."""
        import yaml

        return yaml.safe_load(self.text)


def _load(name: str, entries: list[dict]) -> dict[str, Quote]:
    out = {}
    for entry in entries:
        item = Quote(**entry)
        if item.key in out:
            raise ValueError(f"tina_source/{name}: quote {item.key!r} appears twice")
        if not _COMMIT.match(item.commit):
            raise ValueError(f"tina_source/{name}: quote {item.key!r}: commit must be 40 hex digits, got {item.commit!r}")
        if item.first_line < 1:
            raise ValueError(f"tina_source/{name}: quote {item.key!r}: first_line must be >= 1, got {item.first_line}")
        out[item.key] = item
    return out


@lru_cache(maxsize=1)
def quotes() -> dict[str, Quote]:
    """Every quote of every ``tina_source/*.json`` file, by key (keys are unique across files)."""
    found: dict[str, Quote] = {}
    folder = bundled_path("reference/tina_source")
    for path in sorted(folder.glob("*.json")):
        for key, item in _load(path.name, json.loads(path.read_text())).items():
            if key in found:
                raise ValueError(f"tina_source: quote {key!r} is in two files")
            found[key] = item
    return found


def quote(key: str) -> Quote:
    """One quote by key; a KeyError names the key."""
    try:
        return quotes()[key]
    except KeyError:
        raise KeyError(f"no Tina quote {key!r} in tina_sweep/data/reference/tina_source/") from None
