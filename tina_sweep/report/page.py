"""The report page of one study: ``index.md`` (images referenced relatively) and a self-contained
``index.html`` (inline CSS, images embedded as base64, no scripts, no network) that a browser opens offline."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_RASTER_FIRST = (".png", ".jpg", ".jpeg", ".svg")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a;
       max-width: 1150px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; } th { background: #f2f4f7; }
tbody tr:nth-child(even) { background: #fafbfc; }
code { background: #f2f4f7; padding: 0 0.25em; border-radius: 3px; font-size: 0.92em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.description { color: #444; font-size: 1.05em; }
"""


@dataclass(frozen=True)
class _Figure:
    """One figure as shown on the page: the file to show, an optional vector twin, a caption."""

    shown: Path
    vector: Path | None
    caption: str


def _value(value: Any) -> str:
    """A study value as Markdown table-cell text (code span, pipes escaped)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def study_definition(study: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, Markdown text) rows: name, description, scale, design, axes, seeds, base overrides, trials.

    Takes ``study.json`` as written by a sweep ({"study": ..., "scale": ..., "jobs": [...]}) or the study
    definition itself; with a scale, its overrides are applied as the sweep applied them.
    """
    from tina_sweep.report.frame import definition_at_scale

    record = study.get("study", study)
    scale = study.get("scale")
    plan = definition_at_scale(record, scale)
    axes, base, seeds = plan.axes, plan.base, plan.seeds
    rows = [("name", _cell(str(record.get("name", "")))),
            ("description", _cell(str(record.get("description") or "")))]
    if scale:
        rows.append(("scale", _cell(str(scale))))
    if plan.recipe:
        rows.append(("recipe", _cell(plan.recipe)))
    if record.get("design"):
        rows.append(("design", _cell(str(record["design"]))))
    rows.append(("axes", "; ".join(f"{_value(k)} = " + ", ".join(_value(v) for v in values)
                                     for k, values in axes.items()) or "none"))
    rows.append(("seeds", ", ".join(str(s) for s in seeds) or "-"))
    rows.append(("base overrides", "; ".join(f"{_value(k)} = {_value(v)}" for k, v in base.items()) or "none"))
    jobs = study.get("jobs")
    if isinstance(jobs, list):
        trials = sum(1 for job in jobs if job.get("kind") == "trial")
        extra = len(jobs) - trials
        rows.append(("jobs", f"{trials} trial{'s' * (trials != 1)}"
                     + (f" + {extra} base model evaluation{'s' * (extra != 1)}" if extra else "")))
    return rows


def _caption(stem: str) -> str:
    """A readable caption from a figure's file name (the names ``plots.write_figures`` gives)."""
    pareto = re.fullmatch(r"pareto_(.+)_(total_usd|train_usd|eval_usd|device_hours)", stem)
    if pareto:
        cost = {"total_usd": "total cost in US$", "train_usd": "training cost in US$",
                "eval_usd": "evaluation cost in US$", "device_hours": "device-hours"}[pareto.group(2)]
        return (f"Pass@1 on {pareto.group(1)} against {cost}; bars are 95% bootstrap confidence intervals, "
                "the dashed step line is the Pareto front.")
    if stem == "learning_curves":
        return "Training reward and completion length per step, one colour per arm, one dash style per seed."
    return stem.replace("_", " ")


def _figures(paths: list[Path]) -> list[_Figure]:
    """Group files by stem (PNG shown, SVG linked), keeping first-seen order."""
    groups: dict[Path, list[Path]] = {}
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in _MIME:
            groups.setdefault(path.with_suffix(""), []).append(path)
    figures = []
    for stem, files in groups.items():
        by_suffix = {f.suffix.lower(): f for f in files}
        shown = next(by_suffix[s] for s in _RASTER_FIRST if s in by_suffix)
        vector = by_suffix.get(".svg") if shown.suffix.lower() != ".svg" else None
        figures.append(_Figure(shown, vector, _caption(stem.name)))
    return figures


def _relative(path: Path, out_dir: Path) -> str:
    """``path`` relative to the page's folder, as a Markdown/HTML link target."""
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()


def _md_target(path: Path, out_dir: Path) -> str:
    target = _relative(path, out_dir)
    return f"<{target}>" if " " in target else target


def _data_uri(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{_MIME[path.suffix.lower()]};base64,{encoded}"


def _markdown(study: dict[str, Any], tables_md: dict[str, str], figures: list[_Figure], notes: list[str],
              out_dir: Path) -> str:
    record = study.get("study", study)
    lines = [f"# Study: {record.get('name', '')}", ""]
    if record.get("description"):
        lines += [str(record["description"]), ""]
    lines += ["## Study definition", "", "| field | value |", "|---|---|"]
    lines += [f"| {field} | {value} |" for field, value in study_definition(study)]
    lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    for title, table in tables_md.items():
        lines += [f"## {title}", "", table.strip(), ""]
    if figures:
        lines += ["## Figures", ""]
        for figure in figures:
            link = f" ([SVG]({_md_target(figure.vector, out_dir)}))" if figure.vector else ""
            lines += [f"![{figure.caption}]({_md_target(figure.shown, out_dir)})", "", f"*{figure.caption}*{link}",
                      ""]
    return "\n".join(lines)


def _html(study: dict[str, Any], tables_md: dict[str, str], figures: list[_Figure], notes: list[str],
          out_dir: Path) -> str:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    record = study.get("study", study)
    name = html.escape(str(record.get("name", "")))
    definition = "\n".join(["| field | value |", "|---|---|"]
                           + [f"| {field} | {value} |" for field, value in study_definition(study)])
    body = [f"<h1>Study: {name}</h1>"]
    if record.get("description"):
        body.append(f'<p class="description">{html.escape(str(record["description"]))}</p>')
    body += ["<h2>Study definition</h2>", md.render(definition)]
    if notes:
        body += ["<h2>Notes</h2>", md.render("\n".join(f"- {note}" for note in notes))]
    for title, table in tables_md.items():
        body += [f"<h2>{html.escape(title)}</h2>", md.render(table)]
    if figures:
        body.append("<h2>Figures</h2>")
        for figure in figures:
            caption = html.escape(figure.caption)
            link = (f' (<a href="{html.escape(quote(_relative(figure.vector, out_dir)))}">SVG</a>)'
                    if figure.vector else "")
            body.append(f'<figure><img src="{_data_uri(figure.shown)}" alt="{caption}">'
                        f"<figcaption>{caption}{link}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>tina-sweep report: {name}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_page(out_dir: Path, *, study: dict[str, Any], tables_md: dict[str, str], figures: list[Path],
               notes: list[str]) -> tuple[Path, Path]:
    """Write ``index.md`` and a self-contained ``index.html`` into ``out_dir``; return both paths.

    ``study`` is ``study.json`` (or the study definition), ``tables_md`` maps a section title to a Markdown
    table, ``figures`` are image files (a PNG and SVG of the same name become one figure), ``notes`` are
    Markdown lines shown as a list.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = _figures(figures)
    markdown_path, html_path = out_dir / "index.md", out_dir / "index.html"
    markdown_path.write_text(_markdown(study, tables_md, shown, notes, out_dir), encoding="utf-8")
    html_path.write_text(_html(study, tables_md, shown, notes, out_dir), encoding="utf-8")
    return markdown_path, html_path
