"""The drift page's body: plots drawn with matplotlib as inline SVG (no scripts), tables, and links to "why"."""

from __future__ import annotations

import html
from typing import Any

from eval.report import inline_svg

ACCENT, OK, BAD, MUTED = "#2f6fed", "#1b7f3b", "#b3261e", "#6b7385"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _days(values: list[str]) -> list[float]:
    """ISO days as matplotlib's date numbers (the axes then format them as dates)."""
    from datetime import date

    from matplotlib.dates import date2num

    return [float(date2num(date.fromisoformat(v))) for v in values]  # type: ignore[no-untyped-call]


def conversion_plot(strategy: dict[str, Any]) -> str:
    """Daily conversion against the baseline and the drift threshold, incidents' runs shaded."""
    import matplotlib

    matplotlib.use("Agg")  # no display: drawn in a server
    import matplotlib.pyplot as plt

    days = strategy["days"]
    if not days:
        return ""
    x = _days([d["day"] for d in days])
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    ax.xaxis_date()
    for inc in strategy["incidents"]:
        if inc.get("run"):
            a, b = _days(inc["run"])
            ax.axvspan(a, b, color=BAD, alpha=0.12, lw=0)  # the run of days that made the drift
            if inc.get("resolved_day") and inc["resolved_day"] != inc["run"][1]:
                # retraining and the A/B test, until the incident closed
                ax.axvspan(b, _days([inc["resolved_day"]])[0], color="#a15c00", alpha=0.08, lw=0)
    rate = [d["rate"] for d in days]
    ax.plot(x, [r if r is not None else float("nan") for r in rate], "-o", ms=2.5, lw=1.2, color=ACCENT,
            label="daily conversion")
    below = [(xi, d["rate"]) for xi, d in zip(x, days, strict=True) if d["below"]]
    if below:
        ax.plot([b[0] for b in below], [b[1] for b in below], "o", ms=3.5, color=BAD, label="below threshold")
    nan = float("nan")
    ax.plot(x, [d["baseline"] if d["baseline"] is not None else nan for d in days], color=OK, lw=1.2,
            label="baseline")
    ax.plot(x, [d["threshold"] if d["threshold"] is not None else nan for d in days], "--", color=BAD, lw=1,
            label="drift threshold")
    ax.set_ylim(0, 1)
    ax.set_title(f"{strategy['name']}: {strategy['title']}", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="lower left", ncol=4, frameon=False)
    fig.autofmt_xdate()
    return inline_svg(fig)


def input_plot(points: list[dict[str, Any]]) -> str:
    """MMD² between this week's and the baseline weeks' questions, days with p < 0.05 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not points:
        return ""
    x = _days([p["day"] for p in points])
    fig, ax = plt.subplots(figsize=(7.5, 2.2))
    ax.xaxis_date()
    ax.plot(x, [p["mmd2"] for p in points], "-", lw=1.2, color="#7a5cb8", label="MMD² (this week vs baseline)")
    hits = [(xi, p["mmd2"]) for xi, p in zip(x, points, strict=True) if p["drifted"]]
    if hits:
        ax.plot([h[0] for h in hits], [h[1] for h in hits], "o", ms=3.5, color=BAD, label="p < 0.05")
    ax.set_title(f"Input drift of rep questions ({points[-1]['embedder']} embeddings)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.autofmt_xdate()
    return inline_svg(fig)


def plots(state: dict[str, Any]) -> dict[str, str]:
    """Every plot of the page by name."""
    out = {f"conversion:{s['name']}": conversion_plot(s) for s in state["strategies"]}
    out["input"] = input_plot(state["input_drift"])
    return out


def _why(decision_id: str, text: str) -> str:
    return f"<a href='/why/{_esc(decision_id)}'>{_esc(text)}</a>"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def body(state: dict[str, Any]) -> str:
    """The page's content as an HTML fragment (every value escaped; the SVGs are our own)."""
    figs = plots(state)
    rule = state["rule"]
    parts = [f"<p class=muted>Scope <b>{_esc(state['scope'])}</b> · judged up to {_esc(state['as_of'])} · drift = "
             f"{rule['days']} judged days in a row more than {rule['drop']:.0%} under the baseline (the "
             f"{rule['baseline_days']} days before the window; days with under {rule['min_daily']} units are "
             "skipped)</p>", "<h3>Conversion by strategy</h3>"]
    for s in state["strategies"]:
        last = next((d for d in reversed(s["days"]) if d["below"] is not None), None)
        now = (f"last judged {last['day']}: {_pct(last['rate'])} vs baseline {_pct(last['baseline'])}"
               if last else "not enough data yet")
        incidents = " ".join(_why(i["id"], f"incident {i['day']} of {i['strategy']} ({i['how'] or 'open'})")
                             for i in s["incidents"])
        parts.append(f"<div class=card><div class=muted>{_esc(now)} · target {_esc(s['target'])}"
                     f"{' · ' + incidents if incidents else ''}</div>{figs['conversion:' + s['name']]}</div>")
    parts.append("<h3>Input drift</h3>")
    parts.append(f"<div class=card>{figs['input'] or '<span class=muted>no measurements yet</span>'}</div>")
    parts.append("<h3>A/B tests</h3><table><tr><th>base</th><th>champion</th><th>challenger (share)</th>"
                 "<th>conversations (challenger / champion, needed)</th><th>conversion</th><th>test</th></tr>")
    for ab in state["ab"]:
        test = ab["test"]
        if test is None:
            cells = "<td class=muted>–</td><td>–</td><td class=muted>no test yet</td>"
        else:
            d, r = test["design"], test["result"]
            rates = (f"{r['k_challenger'] / r['n_challenger']:.3f} / {r['k_champion'] / r['n_champion']:.3f}"
                     if r["n_challenger"] and r["n_champion"] else "–")
            verdict = (f"<b>{_esc(r['decision'])}</b> {_esc(r['reason'])}" if r.get("decision") else
                       f"collecting (one look at the horizon): p0 {d['p0']:.3f}, lift {d['mde']:.2f}, "
                       f"h {d['effect_h']:.3f}, alpha {d['alpha']}, power {d['power']}")
            cells = (f"<td>{r['n_challenger']} / {r['n_champion']} (needs {d['n_challenger']} / {d['n_champion']})"
                     f"<br><span class=muted>since {_esc(test['since'])}: {_esc(test['challenger'])} vs "
                     f"{_esc(test['champion'])}</span></td><td>{rates}</td><td>{verdict} "
                     f"{_why(test['incident'], 'why')}</td>")
        challenger = f"{_esc(ab['challenger'])} ({ab['share']:.0%})" if ab["challenger"] else "–"
        parts.append(f"<tr><td>{_esc(ab['base'])}</td><td>{_esc(ab['champion'])}</td><td>{challenger}</td>{cells}"
                     "</tr>")
    parts.append("</table><h3>Jobs</h3><table><tr><th>job</th><th>kind</th><th>state</th><th>attempts</th>"
                 "<th>created</th><th>result</th></tr>")
    for j in state["jobs"]:
        result = (j["result"] or {}).get("model") or j["error"][:120]
        parts.append(f"<tr><td><code>{_esc(j['id'][:8])}</code></td><td>{_esc(j['kind'])}</td>"
                     f"<td><span class='pill {'ok' if j['state'] == 'done' else 'warn'}'>{_esc(j['state'])}</span>"
                     f"</td><td>{j['attempts']}/{j['max_attempts']}</td><td>{_esc(j['created_at'][:16])}</td>"
                     f"<td>{_esc(result)}</td></tr>")
    parts.append("</table><h3>The loop in the ledger</h3><table><tr><th>day</th><th>step</th><th>what</th></tr>")
    for row in state["loop"]:
        if row["kind"] == "drift_check":
            continue  # one per day; the plots show them
        parts.append(f"<tr><td>{_esc(row['day'] or row['ts'][:10])}</td><td><span class=pill>{_esc(row['kind'])}"
                     f"</span></td><td>{_why(row['id'], row['summary'])}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def standalone(state: dict[str, Any], css: str) -> str:
    """The page as one file (what ``crmind drift simulate`` writes beside its database)."""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>crmind drift</title><style>{css}"
            f"</style></head><body><main><h2>Drift monitor</h2>{body(state)}</main></body></html>")
