"""What students and instructors get to read: per-test results, with hidden tests kept hidden.

Every piece of text that could carry something from the submission (assertion messages, which
include `repr()`s of student objects; exception names; notes) goes through `Scrubber` before it
is written anywhere. The scrubber knows each hidden-test source line and string literal and
finds it even when whitespace was changed or quotes were backslash-escaped, so a submission that
reads the hidden tests at run time and smuggles them into its own return value still cannot get
them into feedback or grades.csv. Hidden tests are reported by name and status only.
"""

from __future__ import annotations

import html
import re

REDACTED = "[hidden]"
MAX_MESSAGE = 600


class Scrubber:
    def __init__(self, secrets: list[str]) -> None:
        self.patterns = []
        for secret in secrets:
            chars = [c for c in secret if not c.isspace()]
            if not chars:
                continue
            # any whitespace or escaping backslashes between the characters
            body = r"[\s\\]*".join(re.escape(c) for c in chars)
            self.patterns.append(re.compile(body))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for pat in self.patterns:
            text = pat.sub(REDACTED, text)
        return text

    def leaks(self, text: str) -> bool:
        return any(p.search(text) for p in self.patterns)


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(result: dict) -> str:
    """One line for grades.csv / the summary."""
    if result["status"] == "passed":
        return "passed"
    if result["where"] == "hidden":
        return "failed (hidden tests)"
    return result["status"]


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .45rem .6rem; text-align: left; vertical-align: top; }}
.passed {{ color: #1a7f37; font-weight: 600; }} .failed {{ color: #b42318; font-weight: 600; }}
.banner {{ background: #fff4e5; border: 1px solid #f0a500; padding: .6rem 1rem; margin: 1rem 0; }}
pre {{ white-space: pre-wrap; margin: 0; font-size: .9em; }}
.muted {{ color: #666; }}
</style></head><body>
<h1>{title}</h1>
<p><strong>Student:</strong> {student} &nbsp;·&nbsp; <strong>Score:</strong> {score} / {max_score}
 &nbsp;·&nbsp; <strong>Status:</strong> {status}</p>
{banners}
<table><thead><tr><th>Test</th><th>Result</th><th>Points</th><th>Details</th></tr></thead><tbody>
{rows}
</tbody></table>
{notes}
<p class="muted">Hidden tests are listed by name only. Warnings and other output on stderr never cost points;
only a failing test does.</p>
</body></html>
"""


def render(student: str, title: str, row: dict, results: dict, points: dict, max_points: dict,
           notes: list[str], scrub: Scrubber, unsafe: bool) -> str:
    esc = html.escape
    rows = []
    for tid, r in results.items():
        cls = "passed" if r["status"] == "passed" else "failed"
        if r["where"] == "hidden":
            detail = '<span class="muted">hidden test</span>'
        elif r["message"]:
            detail = f"<pre>{esc(clip(scrub(r['message'])))}</pre>"
        else:
            detail = ""
        label = "passed" if r["status"] == "passed" else r["status"]
        rows.append(f"<tr><td><code>{esc(tid)}</code></td><td class=\"{cls}\">{esc(label)}</td>"
                    f"<td>{points.get(tid, 0):g} / {max_points.get(tid, 0):g}</td><td>{detail}</td></tr>")
    banners = []
    if unsafe:
        banners.append('<div class="banner"><strong>UNSAFE:</strong> graded without a sandbox '
                       "(--unsafe-no-sandbox): only resource limits applied.</div>")
    if row["status"] != "ok":
        banners.append(f'<div class="banner">{esc(clip(scrub(row["message"])))}</div>')
    note_html = ""
    if notes:
        items = "".join(f"<li>{esc(clip(scrub(n)))}</li>" for n in notes)
        note_html = f"<h2>Notes</h2><ul>{items}</ul>"
    page = _PAGE.format(title=esc(title), student=esc(student), score=f"{row['score']:g}",
                        max_score=f"{row['max_score']:g}", status=esc(row["status"]),
                        banners="\n".join(banners), rows="\n".join(rows), notes=note_html)
    if scrub.leaks(html.unescape(page)):  # belt and braces: never write a page that leaks
        page = scrub(html.unescape(page))
        page = html.escape(page)  # plain text fallback, still readable
        page = f"<!DOCTYPE html><html><body><pre>{page}</pre></body></html>"
    return page


TERM_START, TERM_END = "<!-- course:term -->", "<!-- /course:term -->"


def with_term_block(page: str, lines: list[str]) -> str:
    """The feedback page with the export's notes (late penalty, final score, manual grading) in a
    block of its own, replaced on every export so that the page never shows a stale penalty."""
    if TERM_START in page:
        head, _, rest = page.partition(TERM_START)
        page = head + rest.partition(TERM_END)[2]
    if not lines:
        return page
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    block = f'{TERM_START}<section id="term"><h2>Grade</h2><ul>{items}</ul></section>{TERM_END}'
    return page.replace("</body>", block + "</body>", 1) if "</body>" in page else page + block
