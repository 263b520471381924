"""Result tables: the one place that decides how a table looks on disk, in a terminal and in W&B.

A benchmark decides what its table holds (which columns, what each cell says) and hands this module
a :class:`Table` of formatted cells, for people, and rows of raw values, for programs. This module owns
the formats: Markdown (GitHub pipe tables), LaTeX (booktabs ``tabular``), CSV (raw values, ``None`` as an
empty field), JSON (strict: no NaN; ``inf`` written by :func:`jsonable_inf` as a string) and W&B Tables,
plus writing a report's files atomically (:func:`write_texts`). Used by the camera benchmark
(``aggregate``), the sparse-view and reconstruction benchmarks (``sparse_runner``), their merge
(``sparse_report``), the camera gap and the sweep report (``vid3d.report``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vid3d.atomic import atomic_write_bytes

from .records import to_jsonable

__all__ = [
    "Report",
    "Table",
    "ci_cell",
    "csv_text",
    "fmt",
    "json_text",
    "jsonable_inf",
    "latex",
    "markdown",
    "protocol_lines",
    "text",
    "wandb_table",
    "write_texts",
]


@dataclass(frozen=True)
class Table:
    """A table of formatted cells. ``text_columns``: how many leading columns hold names (left-aligned
    and escaped in LaTeX); the others hold numbers (right-aligned; ``"n/a"`` printed as ``--``)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]] = field(default_factory=list)
    text_columns: int = 1

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.header):
                raise ValueError(f"table row {i} has {len(row)} cells for {len(self.header)} columns: {row}")


@dataclass(frozen=True)
class Report:
    """What a benchmark computed, as it is written and shown: ``table`` (its cells), ``summary`` (the
    Markdown a terminal prints: the table with its notes, without the protocol block) and ``texts``, the
    report's files by extension (``md`` is the summary followed by the protocol block)."""

    table: Table
    summary: str
    texts: Mapping[str, str]

    @property
    def markdown(self) -> str:
        return self.texts["md"]

    def write(self, out_dir: str | Path, stem: str) -> dict[str, Path]:
        """``{out_dir}/{stem}.{ext}`` for each text, atomically (``write_texts``); returns the paths."""
        return write_texts(out_dir, stem, self.texts)


def fmt(x: float | None, digits: int, missing: str = "n/a", nan: str = "n/a") -> str:
    """``x`` with ``digits`` decimals; ``missing`` for None, ``nan`` for NaN, ``inf``/``-inf`` as such."""
    if x is None:
        return missing
    x = float(x)
    if math.isnan(x):
        return nan
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def ci_cell(mean: float | None, low: float | None, high: float | None, digits: int, **fmt_kw: str) -> str:
    """``"mean [low, high]"`` (a mean and its confidence interval), each with ``digits`` decimals."""
    return f"{fmt(mean, digits, **fmt_kw)} [{fmt(low, digits, **fmt_kw)}, {fmt(high, digits, **fmt_kw)}]"


def markdown(table: Table) -> list[str]:
    """The table as Markdown lines (header, separator, one line per row)."""
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    return lines + ["| " + " | ".join(row) + " |" for row in table.rows]


def text(*blocks: Iterable[str]) -> str:
    """Blocks of lines (a table's Markdown, notes above and below it) as one text ending in a newline."""
    return "\n".join(line for block in blocks for line in block) + "\n"


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # the symbols our headers use, so that pdflatex (no Unicode input) compiles them
    "Σ": r"$\Sigma$",
    "σ": r"$\sigma$",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
}


def _tex(s: str) -> str:
    return "".join(_TEX.get(c, c) for c in str(s))


def latex(table: Table) -> str:
    """A booktabs ``tabular``: name columns left-aligned, number columns right-aligned (``n/a`` as
    ``--``); every cell escaped for LaTeX (``%``, ``_``, ``&`` ... and the Greek letters and arrows of
    our headers as math, so pdflatex compiles it)."""
    n = table.text_columns
    spec = "l" * n + "r" * (len(table.header) - n)
    out = [r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(_tex(h) for h in table.header) + r" \\",
           r"\midrule"]
    for row in table.rows:
        cells = (_tex(c if i < n else c.replace("n/a", "--")) for i, c in enumerate(row))
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Raw values as CSV (floats at full precision, ``None`` as an empty field)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def jsonable_inf(obj: Any) -> Any:
    """``records.to_jsonable(obj)``, except that an infinite float becomes the string ``"inf"``/``"-inf"``
    rather than None (strict JSON has no infinity; the ground-truth row's PSNR is one)."""
    return to_jsonable(obj, inf_as_str=True)


def json_text(payload: Any, indent: int = 2, sort_keys: bool = True) -> str:
    """Strict JSON (a NaN raises) ending in a newline."""
    return json.dumps(payload, indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"


def protocol_lines(protocol: Mapping[str, Any], skip: Sequence[str] = ()) -> list[str]:
    """The ``Protocol:`` section under a results table: one ``- key: <json>`` line per setting."""
    return ["", "Protocol:", ""] + [
        f"- {k}: {json.dumps(to_jsonable(v), sort_keys=True)}" for k, v in protocol.items() if k not in skip
    ]


def write_texts(out_dir: str | Path, stem: str, texts: Mapping[str, str]) -> dict[str, Path]:
    """Write ``{out_dir}/{stem}.{ext}`` for each ``ext -> text``, each atomically; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{stem}.{ext}" for ext in texts}
    for ext, body in texts.items():
        atomic_write_bytes(paths[ext], body.encode())
    return paths


def wandb_table(header: Sequence[str], rows: Iterable[Sequence[Any]]):
    """A ``wandb.Table`` of raw values (numbers stay numbers, so W&B can plot them)."""
    import wandb

    table = wandb.Table(columns=list(header))
    for row in rows:
        table.add_data(*row)
    return table
