"""`course report`: one self-contained HTML page about a section's grading, for the instructor.

Built from the same class list as the exports (`ledger.rows`) and the verdicts in the journal:
score distribution, pass rate per test (the test that tripped most students first), the gap
between passing a test's public part and passing it whole (hidden tests), grading time per
submission, and the missing / late / not-graded / not-on-the-roster lists. plotly.js is inlined
once, so the page works offline and asks nothing of any server.
"""

from __future__ import annotations

import html
import statistics

import plotly.graph_objects as go

PUBLIC_OK = {"passed"}  # a test failed only in its hidden part passed its public part


def test_stats(rows: list[dict], test_ids: list[str]) -> list[dict]:
    """Per test: students who ran it, full passes, public-part passes (hidden failures excluded)."""
    graded = [r for r in rows if r["status"] != "missing" and r["results"]]
    stats = []
    for tid in test_ids:
        results = [r["results"].get(tid, {}) for r in graded]
        n = len(results)
        passed = sum(1 for x in results if x.get("status") == "passed")
        public = passed + sum(1 for x in results if x.get("status") == "failed" and x.get("where") == "hidden")
        stats.append({"test": tid, "students": n, "passed": passed, "public_passed": public,
                      "pass_rate": passed / n if n else 0.0, "public_rate": public / n if n else 0.0})
    return sorted(stats, key=lambda s: (s["pass_rate"], s["test"]))


def _figures(rows, stats, max_score) -> list[go.Figure]:
    scored = [r["score"] for r in rows if r["status"] != "missing"]
    dist = go.Figure(go.Histogram(x=scored, xbins={"start": -0.25, "end": max_score + 0.25, "size": 0.5},
                                  marker_color="#3b6ea5"))
    dist.update_layout(title=f"Score distribution ({len(scored)} graded, out of {max_score:g})",
                       xaxis_title="score after late penalty", yaxis_title="students", bargap=0.05)
    names = [s["test"] for s in stats]
    rates = go.Figure(go.Bar(x=[100 * s["pass_rate"] for s in stats], y=names, orientation="h",
                             marker_color="#2e8b57", text=[f"{s['passed']}/{s['students']}" for s in stats]))
    rates.update_layout(title="Pass rate per test (the hardest first)", xaxis_title="% of students passing",
                        xaxis_range=[0, 100], yaxis_autorange="reversed")
    gap = go.Figure([
        go.Bar(name="public part passed", x=names, y=[100 * s["public_rate"] for s in stats], marker_color="#9ecae1"),
        go.Bar(name="whole test passed (hidden included)", x=names, y=[100 * s["pass_rate"] for s in stats],
               marker_color="#08519c"),
    ])
    gap.update_layout(title="Hidden-test gap: passing the public part vs passing the whole test",
                      yaxis_title="% of students", yaxis_range=[0, 100], barmode="group")
    timed = [r for r in rows if r.get("elapsed")]
    times = go.Figure(go.Bar(x=[r["student"] for r in timed], y=[r["elapsed"] for r in timed], marker_color="#8c6bb1"))
    mean = statistics.fmean(r["elapsed"] for r in timed) if timed else 0.0
    times.update_layout(title=f"Grading time per submission (mean {mean:.1f} s)", yaxis_title="seconds")
    return [dist, rates, gap, times]


def _table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> str:
    esc = html.escape
    if not rows:
        return f'<h2>{esc(title)}</h2><p class="none">none</p>'
    head = "".join(f"<th>{esc(label)}</th>" for label, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(r.get(key, '')))}</td>" for _, key in columns) + "</tr>"
                   for r in rows)
    return f"<h2>{esc(title)} ({len(rows)})</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(title: str, stem: str, rows: list[dict], test_ids: list[str]) -> str:
    max_score = rows[0]["max_score"] if rows else 0.0
    stats = test_stats(rows, test_ids)
    figures = _figures(rows, stats, max_score)
    plots = "\n".join(f'<div class="figure">{fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})}</div>'
                      for i, fig in enumerate(figures))
    who = [("student", "student"), ("name", "name")]
    missing = [r for r in rows if r["status"] == "missing"]
    late = [r for r in rows if r["days_late"] or r["lms_late"]]
    errors = [r for r in rows if r["status"] not in ("ok", "missing")]
    unknown = [r for r in rows if "not on the roster" in r["flags"]]
    manual = [dict(r, pending=" ".join(r["needs_manual"])) for r in rows if r["needs_manual"]]
    graded = [r["score"] for r in rows if r["status"] != "missing"]
    summary = (f"{len(rows)} students, {len(graded)} graded, {len(missing)} missing; mean "
               f"{statistics.fmean(graded):.2f} / {max_score:g}" if graded else f"{len(rows)} students, none graded")
    tables = "\n".join([
        _table("Missing", missing, who),
        _table("Late", late, [*who, ("submitted", "submitted_at"), ("due", "due"), ("days late", "days_late"),
                              ("penalty %", "penalty_percent"), ("marked late by the platform", "lms_late")]),
        _table("Not graded normally (error, timeout, aborted)", errors, [*who, ("status", "status"), ("why", "message")]),
        _table("Not on the roster", unknown, [*who, ("score", "score")]),
        _table("Needs manual grading", manual, [*who, ("answers", "pending")]),
    ])
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {esc(title)} ({esc(stem)})</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }} td, th {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }}
.figure {{ margin: 1rem 0; }} .none {{ color: #666; }}
</style></head><body>
<h1>Class report: {esc(title)} ({esc(stem)})</h1>
<p id="summary">{esc(summary)}</p>
{plots}
{tables}
</body></html>
"""
