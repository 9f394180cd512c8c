"""`course build`'s progress: a live rich display on a terminal, plain lines elsewhere, a summary table."""

import io
import re

from rich.console import Console

from build_tools.build import Paths, build
from build_tools.progress import BuildProgress, summary_table
from conftest import make_project, run_course

ESCAPE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # any control character but tab and newline


def _events(progress: BuildProgress) -> None:
    progress.note("executing 2 notebook(s)")
    progress.cell(("01_a", 0, 4))
    progress.cell(("02_b", 0, 3))
    for done in (1, 2, 3):
        progress.cell(("01_a", done, 4))
    progress.cell(("02_b", 1, 3))
    progress.finished("02_b", 2.25)


def test_plain_mode_one_line_per_event_without_control_characters():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=60)
    with BuildProgress(console, {"01_a": 12.0}) as progress:
        _events(progress)
    text = out.getvalue()
    assert not ESCAPE.search(text), repr(text)
    lines = text.splitlines()
    assert [re.sub(r", \d+ s$", ", T s", line) for line in lines] == [
        "executing 2 notebook(s)",
        "  01_a: started, 4 cells (last run 12 s)",
        "  02_b: started, 3 cells (no earlier run)",
        "  01_a: cell 1/4 done, T s", "  01_a: cell 2/4 done, T s", "  01_a: cell 3/4 done, T s",
        "  02_b: cell 1/3 done, T s",
        "  02_b: executed in 2.2 s",
    ]


def test_terminal_mode_shows_live_rows_with_cells_elapsed_and_estimate():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with BuildProgress(console, {"01_a": 12.0}) as progress:
        _events(progress)
        live = out.getvalue()
    assert "\x1b[" in live  # drawn in place with cursor movements, not appended
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", live)
    assert re.search(r"01_a .*3/4 cells 0:00:\d\d last run 12 s", plain), plain
    assert re.search(r"02_b .*1/3 cells 0:00:\d\d no earlier run", plain), plain
    assert "02_b: executed in 2.2 s" in plain  # finished sections are printed above the live rows


def test_summary_table_plain_and_terminal():
    rows = [("01_a", False, 12.34), ("02_b", True, 0.0)]
    out = io.StringIO()
    Console(file=out, force_terminal=False, width=80).print(summary_table(rows, plain=True))
    text = out.getvalue()
    assert not ESCAPE.search(text)
    assert re.search(r"\| 01_a\s+\| executed\s+\|\s+12.3 \|", text), text
    assert re.search(r"\| 02_b\s+\| cached\s+\|\s+- \|", text), text


def test_build_in_a_terminal_counts_every_cell(tmp_path):
    """In-process execution (-j 1): nbclient's per-cell hook drives the live row to the last cell."""
    root = make_project(tmp_path / "p")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150)
    report = build(Paths(root), fast=True, site=False, console=console, jobs=1)
    assert report.executed == ["01_fixture"]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    counts = [tuple(map(int, m.groups())) for m in re.finditer(r"01_fixture .*?(\d+)/(\d+) cells", plain)]
    total = counts[-1][1]
    assert total > 3 and counts[-1] == (total, total), counts
    assert "01_fixture: executed in" in plain
    assert re.search(r"01_fixture\s+.\s+executed\s+.\s+[\d.]+", plain), plain  # the summary table


def test_build_to_a_log_two_workers_send_their_cells_back(tmp_path):
    """-j 2 in a subprocess whose output is a pipe: plain lines only, cell lines of both sections
    (they come from the worker processes through a queue), then the summary table."""
    root = make_project(tmp_path / "p")
    src = root / "source_exercises/01_fixture.py"
    (root / "source_exercises/02_fixture_copy.py").write_text(src.read_text().replace("save_results(1", "save_results(2"))
    result = run_course("build", "--fast", "--no-site", "-j", "2", cwd=root)
    assert not ESCAPE.search(result.stdout), repr(result.stdout[:2000])
    for stem in ("01_fixture", "02_fixture_copy"):
        total = int(re.search(rf"  {stem}: started, (\d+) cells", result.stdout).group(1))
        done = [int(n) for n in re.findall(rf"  {stem}: cell (\d+)/{total} done, \d+ s", result.stdout)]
        assert done == list(range(1, total + 1)), (stem, done)
        assert re.search(rf"\| {stem}\s+\| executed\s+\|\s+[\d.]+ \|", result.stdout), result.stdout
