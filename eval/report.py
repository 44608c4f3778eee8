"""The eval report: one self-contained HTML file (plots inlined as SVG, no scripts, no network).

Per suite: the headline metrics, scores per language and per category, the latency histogram and the failed items
with why; and, when a comparison is given, champion and challenger side by side with each delta's confidence
interval.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from eval.compare import SuiteDelta
from eval.results import LOWER_IS_BETTER, EvalRun, SuiteResult

MAX_FAILURES = 25
CSS = """
body{font:14px/1.45 system-ui,"Noto Sans CJK SC",sans-serif;margin:24px auto;max-width:1100px;color:#1d2430;
padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.muted{color:#5b6675}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #dde3ea;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f3f6f9}
td.num{text-align:right;font-variant-numeric:tabular-nums}.better{color:#137333;font-weight:600}
.worse{color:#b3261e;font-weight:600}.plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{max-width:520px;height:auto}
code{background:#f3f6f9;padding:1px 4px;border-radius:3px}.fail{font-size:12.5px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _esc(value)


def inline_svg(fig: Any) -> str:
    """A matplotlib figure as inline SVG (the XML header dropped so it can sit inside HTML)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _bars(title: str, groups: dict[str, dict[str, float]]) -> str:
    """Mean score per group as horizontal bars, labelled with the score and the group's size."""
    import matplotlib.pyplot as plt

    names = list(groups)
    fig, ax = plt.subplots(figsize=(5, 0.32 * len(names) + 0.9))
    ax.barh(names, [groups[n]["score"] for n in names], color="#3d6fb6")
    for y, n in enumerate(names):
        ax.text(min(groups[n]["score"], 1.0) + 0.01, y, f"{groups[n]['score']:.2f} (n={groups[n]['n']})",
                va="center", fontsize=8)
    ax.set_xlim(0, 1.3)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    return inline_svg(fig)


def _latency(result: SuiteResult) -> str:
    import matplotlib.pyplot as plt

    values = [i.latency_s for i in result.items if i.latency_s is not None]
    if not values:
        return ""
    fig, ax = plt.subplots(figsize=(5, 2.4))
    ax.hist(values, bins=min(20, max(5, len(values) // 3)), color="#7a5cb8")
    ax.set_xlabel("seconds per item", fontsize=9)
    ax.set_title(f"{result.suite}: latency (p50 {sorted(values)[len(values) // 2]:.2f} s)", fontsize=10)
    return inline_svg(fig)


def _forest(deltas: list[SuiteDelta]) -> str:
    """Each suite's delta with its confidence interval, zero marked."""
    import matplotlib.pyplot as plt

    rows = [d for d in deltas if d.delta is not None]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 0.9))
    for y, d in enumerate(rows):
        color = {"better": "#137333", "worse": "#b3261e"}.get(d.verdict, "#5b6675")
        assert d.low is not None and d.high is not None and d.delta is not None  # rows with a delta have all three
        ax.plot([d.low, d.high], [y, y], color=color, linewidth=2)
        ax.plot([d.delta], [y], "o", color=color)
    ax.axvline(0, color="#999", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(rows)), [d.suite for d in rows])
    ax.invert_yaxis()
    ax.set_xlabel("challenger − champion (score), 95% CI", fontsize=9)
    return inline_svg(fig)


def _metrics_row(result: SuiteResult) -> str:
    shown = ", ".join(f"{k} {_fmt(v)}" for k, v in result.metrics.items() if k != "score")
    return (f"<tr><td><a href='#{_esc(result.suite)}'>{_esc(result.suite)}</a></td>"
            f"<td class=num>{_fmt(result.metrics.get('score'))}</td><td class=num>{len(result.items)}</td>"
            f"<td class=num>{result.seconds:.1f}</td><td>{shown}</td></tr>")


def _suite_section(result: SuiteResult) -> str:
    parts = [f"<h2 id='{_esc(result.suite)}'>{_esc(result.suite)}</h2>"]
    lower = [k for k in result.metrics if k in LOWER_IS_BETTER or k.startswith("asr:")]
    parts.append("<table><tr><th>metric</th><th>value</th></tr>" + "".join(
        f"<tr><td>{_esc(k)}{' (lower is better)' if k in lower else ''}</td><td class=num>{_fmt(v)}</td></tr>"
        for k, v in result.metrics.items()) + "</table>")
    plots = [_bars(f"{result.suite}: score by language", result.by("lang"))]
    categories = result.by("category")
    if 1 < len(categories) <= 16:
        plots.append(_bars(f"{result.suite}: score by category", categories))
    plots.append(_latency(result))
    parts.append("<div class=plots>" + "".join(plots) + "</div>")
    if len(categories) > 16:
        parts.append("<table><tr><th>category</th><th>score</th><th>n</th></tr>" + "".join(
            f"<tr><td>{_esc(k)}</td><td class=num>{v['score']:.3f}</td><td class=num>{v['n']}</td></tr>"
            for k, v in categories.items()) + "</table>")
    if result.meta:
        parts.append("<details><summary>settings and versions</summary><pre>"
                     + _esc(_pretty(result.meta)) + "</pre></details>")
    failed = [i for i in result.items if i.score < 1.0]
    if failed:
        parts.append(f"<h3>Items below full score ({len(failed)} of {len(result.items)})</h3><table class=fail>"
                     "<tr><th>item</th><th>lang</th><th>category</th><th>score</th><th>why</th></tr>")
        for item in failed[:MAX_FAILURES]:
            parts.append(f"<tr><td><code>{_esc(item.id)}</code></td><td>{_esc(item.lang)}</td>"
                         f"<td>{_esc(item.category)}</td><td class=num>{item.score:.2f}</td>"
                         f"<td>{_esc(_pretty(item.detail))[:600]}</td></tr>")
        parts.append("</table>")
        if len(failed) > MAX_FAILURES:
            parts.append(f"<p class=muted>… and {len(failed) - MAX_FAILURES} more in results.json</p>")
    return "".join(parts)


def _pretty(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


def _comparison(champion: EvalRun, deltas: list[SuiteDelta], run: EvalRun) -> str:
    rows = []
    for d in deltas:
        css = d.verdict if d.verdict in ("better", "worse") else ""
        ci = "–" if d.low is None else f"[{d.low:+.3f}, {d.high:+.3f}]"
        delta = "–" if d.delta is None else f"{d.delta:+.3f}"
        rows.append(f"<tr><td>{_esc(d.suite)}</td><td class=num>{d.n}</td><td class=num>{_fmt(d.a)}</td>"
                    f"<td class=num>{_fmt(d.b)}</td><td class=num>{delta}</td><td class=num>{ci}</td>"
                    f"<td class='{css}'>{_esc(d.verdict)}</td></tr>")
    return (f"<h2 id=compare>Champion vs challenger</h2><p>A = <code>{_esc(champion.run_id)}</code> "
            f"({_esc(champion.model)}), B = <code>{_esc(run.run_id)}</code> ({_esc(run.model)}); paired bootstrap "
            "over the items both graded, 95% interval; a verdict needs the whole interval on one side of zero.</p>"
            "<table><tr><th>suite</th><th>items</th><th>A</th><th>B</th><th>B − A</th><th>95% CI</th>"
            f"<th>verdict</th></tr>{''.join(rows)}</table><div class=plots>{_forest(deltas)}</div>")


def render(run: EvalRun, *, champion: EvalRun | None = None, deltas: list[SuiteDelta] | None = None) -> str:
    """The whole report as one HTML string."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: the report is built in a server or a CI job
    head = (f"<h1>crmind eval: {_esc(run.model)}</h1><p class=muted>run <code>{_esc(run.run_id)}</code> · "
            f"started {_esc(run.started)}{' · quick slice' if run.quick else ''}"
            + (f" · ledger row <code>{_esc(run.ledger_id)}</code>" if run.ledger_id else "") + "</p>")
    summary = ("<table><tr><th>suite</th><th>score</th><th>items</th><th>seconds</th><th>metrics</th></tr>"
               + "".join(_metrics_row(s) for s in run.suites.values()) + "</table>")
    versions = "<details><summary>versions</summary><pre>" + _esc(_pretty(run.versions)) + "</pre></details>"
    body = [head, summary, versions]
    if champion is not None and deltas is not None:
        body.append(_comparison(champion, deltas, run))
    body += [_suite_section(s) for s in run.suites.values()]
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>crmind eval {_esc(run.run_id)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def write(run: EvalRun, folder: Path, *, champion: EvalRun | None = None,
          deltas: list[SuiteDelta] | None = None, name: str = "report.html") -> Path:
    """Write the report into the run's folder."""
    path = folder / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(run, champion=champion, deltas=deltas), encoding="utf-8")
    tmp.replace(path)
    return path
