"""The report page's frame: its CSS and scripts, tables, sections and plots, and the run's settings in
words. bench.analysis.report fills it with the statistics.

The page fits a 1,280 px window; every table sorts by a click on a column header (SORT_SCRIPT, inline: the
page loads nothing from elsewhere); a small script marks <body data-images-loaded="k/n"
data-scroll-width="px"> once loaded, which the headless browser test reads.
"""

from __future__ import annotations

import base64
import html
import os

# The page fits a 1,280 px window: the body is at most 1,200 px wide, headers wrap, an interval sits under
# its value, and a table that is still wider scrolls inside its own box, never the page.
CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 16px; color: #222; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f0f0f0; vertical-align: bottom; white-space: normal; max-width: 9em; cursor: pointer; }
th:hover { background: #e4e4e4; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 9px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 9px; }
td.l, th.l { text-align: left; } td { white-space: nowrap; }
.ci { display: block; color: #666; font-size: 11px; }
figure { margin: 1.5em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #555; font-size: 13px; } code { background: #f4f4f4; padding: 0 3px; }
"""
LOADED_SCRIPT = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
  document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
});
</script>"""
# Click a header to sort its table by that column (again: the other way). A cell sorts by its number
# (the first one in it: "0.812 [0.70, 0.90]" by 0.812, "<0.01" by 0.01) when it has one, else by its
# text; cells without a value ("–") go last either way.
SORT_SCRIPT = """<script>
(function () {
  function key(td) {
    var t = td.textContent.trim().replace(/^[<>~]/, "");
    var m = t.match(/^[-+\\u2212]?\\d+(\\.\\d+)?(e[-+]?\\d+)?/i);
    return m ? parseFloat(m[0].replace("\\u2212", "-")) : (t === "\\u2013" || t === "" ? null : t.toLowerCase());
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var down = th.getAttribute("aria-sort") === "ascending";
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) { return [key(r.cells[col]), i, r]; });
    rows.sort(function (a, b) {
      if (a[0] === null || b[0] === null) { return (a[0] === null) - (b[0] === null) || a[1] - b[1]; }
      var c = typeof a[0] === typeof b[0] ? (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
                                          : (typeof a[0] === "number" ? -1 : 1);
      return (down ? -c : c) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
  }
  document.querySelectorAll("table thead th").forEach(function (th) {
    th.title = "sort by this column";
    th.addEventListener("click", function () { sortBy(th); });
  });
})();
</script>"""


def html_table(header, rows, table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f'<th class="{"l" if i < 2 else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < 2 else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<div class="table-wrap"><table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows])


class Page:
    """The report's sections, each in HTML and Markdown, and its plots (PNG bytes by name)."""

    def __init__(self, rel: str, figs: dict[str, tuple[str, bytes]]):
        self.rel, self.figs = rel, figs  # rel: the run folder, relative to the report's
        self.html: list[str] = []
        self.md: list[str] = []

    def add(self, heading: str, html_body: str, md_body: str) -> None:
        self.html.append(f"<h2>{html.escape(heading)}</h2>\n{html_body}")
        self.md.append(f"## {heading}\n\n{md_body}")

    def link_html(self, path: str, text: str) -> str:
        return f'<a href="{html.escape(os.path.join(self.rel, path))}">{html.escape(text)}</a>'

    def link_md(self, path: str, text: str) -> str:
        return f"[{text}]({os.path.join(self.rel, path)})"

    def fig(self, name: str) -> tuple[str, str]:
        """(HTML, Markdown) of a plot ("", "" when there is none)."""
        if name not in self.figs:
            return "", ""
        caption, png = self.figs[name]
        data = base64.b64encode(png).decode()
        return (f'<figure><img id="plot-{name}" alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>",
                f"![{caption}](report-plots/{name}.png)")


def _plural(n, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run_summary(config: dict, statuses: dict, folds_by_dataset: dict[str, int] | None = None) -> str:
    """The run's settings and record counts in words, e.g. "suite demo; 5 trials per job (the defaults trial
    included); 1 model seed; base seed 0; no tuning clock; holdout validation; all splits; records: 480 ok".
    `folds_by_dataset`: the inner folds each dataset's jobs used (records' inner_folds): a suite's inner folds
    may apply to its small datasets only."""
    trials, clock, splits = config.get("trials"), config.get("tune_seconds"), config.get("max_splits")
    parts = [f"suite {config.get('suite', '?')}",
             "trials per job: as many as the tuning clock allows" if trials is None
             else f"{_plural(trials, 'trial')} per job (the defaults trial included)",
             _plural(config.get("seeds") or 1, "model seed"), f"base seed {config.get('seed', 0)}",
             "no tuning clock" if clock is None else f"tuning clock {clock:g} s per job",
             _validation(config.get("inner_folds") or 1, folds_by_dataset or {}),
             "all splits" if splits is None else f"the first {_plural(splits, 'split')} of each dataset"]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0])))
    return "; ".join(parts) + f"; records: {counts or 'none'}"


def _validation(run_folds: int, folds_by_dataset: dict[str, int]) -> str:
    """"holdout validation", "inner 3-fold cross-validation", or with both in one run how many datasets each."""
    def name(k: int) -> str:
        return "holdout validation" if k <= 1 else f"inner {k}-fold cross-validation"

    used = sorted(set(folds_by_dataset.values()), reverse=True)
    if len(used) <= 1:
        return name(used[0] if used else run_folds)
    return ", ".join(f"{name(k)} on {_plural(sum(v == k for v in folds_by_dataset.values()), 'dataset')}"
                     for k in used)


