"""The report's tables, one model written four ways: Markdown, CSV, LaTeX (booktabs) and
HTML. The best value of each scored column is bold (``**`` / ``\\textbf{}`` /
``<strong>``); every piece of text is escaped for the format it goes into. Pure Python."""

from __future__ import annotations

import csv
import html
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

# LaTeX's special characters, and what stands for each in running text
_LATEX_SPECIALS = {
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
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIALS))


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's specials (``\\ & % $ # _ { } ~ ^``) escaped."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], str(text))


def markdown_escape(text: str) -> str:
    """A Markdown table cell: pipes and emphasis marks escaped, no line breaks."""
    text = str(text).replace("\n", " ")
    return re.sub(r"([\\|*_`])", r"\\\1", text)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class Table:
    """A table: ``columns`` (headers), ``rows`` (cells: text, numbers, None), and which
    columns are scored (``best``: column index -> ``"max"`` or ``"min"``). ``digits``
    says how floats are shown (per column, else ``default_digits``); ``name`` is the file
    stem, ``title`` the caption."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    best: dict[int, str] = field(default_factory=dict)
    digits: dict[int, int] = field(default_factory=dict)
    default_digits: int = 4
    note: str = ""
    label: str = ""  # the LaTeX label is tab:<label> (tab:<name> when empty)

    def best_rows(self) -> dict[int, set[int]]:
        """Column index -> the rows holding its best value (ties: all of them); a column
        with fewer than two numbers has none (bold would say nothing)."""
        out: dict[int, set[int]] = {}
        for c, mode in self.best.items():
            vals = [(i, r[c]) for i, r in enumerate(self.rows) if c < len(r) and _number(r[c])]
            if len(vals) < 2:
                continue
            pick = max if mode == "max" else min
            top = pick(v for _, v in vals)
            out[c] = {i for i, v in vals if abs(v - top) <= 1e-12}
        return out

    def numeric(self, c: int) -> bool:
        """Column ``c`` holds numbers (right-aligned); the first column never does."""
        return c > 0 and any(c < len(r) and _number(r[c]) for r in self.rows)

    def text(self, c: int, v: Any) -> str:
        """A cell as shown (not escaped)."""
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                return "-"
            return f"{v:.{self.digits.get(c, self.default_digits)}f}"
        return str(v)

    # ------------------------------------------------------------------ formats

    def to_csv(self) -> str:
        """Full-precision values (floats rounded to 6 places), empty cells for None."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows:
            w.writerow(
                [
                    ""
                    if v is None or (isinstance(v, float) and not math.isfinite(v))
                    else round(v, 6)
                    if isinstance(v, float)
                    else v
                    for v in r
                ]
            )
        return buf.getvalue()

    def to_markdown(self) -> str:
        best = self.best_rows()
        head = "| " + " | ".join(markdown_escape(c) for c in self.columns) + " |"
        cols = range(len(self.columns))
        align = "|" + "|".join("---:" if self.numeric(c) else ":---" for c in cols) + "|"
        lines = [f"**{markdown_escape(self.title)}**", "", head, align]
        for i, r in enumerate(self.rows):
            cells = []
            for c, v in enumerate(r):
                s = markdown_escape(self.text(c, v))
                cells.append(f"**{s}**" if i in best.get(c, ()) else s)
            lines.append("| " + " | ".join(cells) + " |")
        if self.note:
            lines += ["", markdown_escape(self.note)]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        """A ``table`` float holding a booktabs ``tabular`` (``\\usepackage{booktabs}``),
        text columns left-aligned, numbers right-aligned, best values in ``\\textbf{}``."""
        best = self.best_rows()
        spec = "".join("r" if self.numeric(c) else "l" for c in range(len(self.columns)))
        lines = [
            r"\begin{table}[htbp]",
            r"\centering",
            r"\caption{" + latex_escape(self.title) + "}",
            r"\label{tab:" + re.sub(r"[^A-Za-z0-9:.-]+", "-", self.label or self.name) + "}",
            r"\begin{tabular}{" + spec + "}",
            r"\toprule",
            " & ".join(latex_escape(c) for c in self.columns) + r" \\",
            r"\midrule",
        ]
        for i, r in enumerate(self.rows):
            cells = []
            for c, v in enumerate(r):
                s = latex_escape(self.text(c, v))
                cells.append(r"\textbf{" + s + "}" if i in best.get(c, ()) else s)
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.note:
            lines.append(r"\par\smallskip{\footnotesize " + latex_escape(self.note) + "}")
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        best = self.best_rows()
        out = [f"<table><caption>{html.escape(self.title)}</caption>", "<thead><tr>"]
        out += [f"<th>{html.escape(c)}</th>" for c in self.columns]
        out.append("</tr></thead><tbody>")
        for i, r in enumerate(self.rows):
            out.append("<tr>")
            for c, v in enumerate(r):
                s = html.escape(self.text(c, v))
                cls = ' class="num"' if c > 0 and (_number(v) or v is None) else ""
                s = f"<strong>{s}</strong>" if i in best.get(c, ()) else s
                out.append(f"<td{cls}>{s}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
        if self.note:
            out.append(f'<p class="note">{html.escape(self.note)}</p>')
        return "".join(out)
