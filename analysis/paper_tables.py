"""Regenerate the Tina paper's tables (main results, the four ablations, cost) from the published numbers
bundled in ``tina_sweep/data/reference/``, through the same table code as ``tina-sweep report``.

    python analysis/paper_tables.py [--out paper_tables]

Writes ``paper_*.tex``/``.md``/``.csv`` and ``paper_tables.tex`` (a standalone LaTeX document) into ``--out`` and
prints the Markdown tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tina_sweep.report.paper import paper_tables, write_paper_tables
from tina_sweep.report.tables import to_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("paper_tables"), help="output folder")
    args = parser.parse_args(argv)
    paths = write_paper_tables(args.out)
    for table in paper_tables():
        print(to_markdown(table))
    print(f"{len(paths)} files in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
