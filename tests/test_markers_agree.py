"""The splitter (what the release drops) and the grader (what it scrubs from feedback and reports as
a hidden failure) read the nbgrader markers with one parser, `build_tools.markers`: fed the same
tricky cells, they agree line by line."""

from __future__ import annotations

import pytest

from build_tools import markers
from grader import section

HIDDEN_A = "assert secret_value_alpha(3) == 27, 'alpha hidden check'"
HIDDEN_B = "assert secret_value_beta([1, 2]) == [2, 4]"
PUBLIC = "assert public_check_gamma(2) == 4, 'gamma public check'"

CELLS = {
    "plain": f"{PUBLIC}\n### BEGIN HIDDEN TESTS\n{HIDDEN_A}\n### END HIDDEN TESTS\n",
    "indented": (f"{PUBLIC}\nif True:\n    ### BEGIN HIDDEN TESTS\n    {HIDDEN_A}\n"
                 f"    ### END HIDDEN TESTS\n    pass\n"),
    "marker in a string": (f"note = '### BEGIN HIDDEN TESTS'\n{PUBLIC}\n### BEGIN HIDDEN TESTS\n"
                           f"{HIDDEN_A}\n### END HIDDEN TESTS\n"),
    "crlf": f"{PUBLIC}\r\n### BEGIN HIDDEN TESTS\r\n{HIDDEN_A}\r\n### END HIDDEN TESTS\r\n",
    "tabs": f"{PUBLIC}\nif True:\n\t### BEGIN HIDDEN TESTS\t\n\t{HIDDEN_A}\n\t### END HIDDEN TESTS\n",
    "two blocks": (f"### BEGIN HIDDEN TESTS\n{HIDDEN_A}\n### END HIDDEN TESTS\n{PUBLIC}\n"
                   f"### BEGIN HIDDEN TESTS\n{HIDDEN_B}\n### END HIDDEN TESTS\n"),
    "inline marker text": f"{PUBLIC}  # ### BEGIN HIDDEN TESTS is not a marker here\n",
}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def _is_marker(line: str) -> bool:
    return bool(markers.MARKER.match(line))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_splitter_and_grader_agree_on_what_is_hidden(name):
    cell = CELLS[name]
    assert markers.scan(cell)[1] == [], "every cell here is one the build accepts"
    # What the build writes: the grader's source notebook keeps the hidden block with its markers,
    # the students' release drops it.
    source = markers.render(cell, solutions="markers", hidden="markers")
    release = markers.render(cell, solutions="stub", hidden="drop")
    dropped = [line for line in _lines(source) if line not in _lines(release) and not _is_marker(line)]

    # The grader: the hidden line ranges of the source cell, and the secrets it scrubs.
    spec = section.TestSpec("t", 1.0, source, markers.hidden_ranges(source))
    numbered = source.replace("\r\n", "\n").split("\n")
    in_ranges = [numbered[no - 1].strip() for a, b in spec.hidden_ranges for no in range(a, b + 1)]
    graded_hidden = [line for line in in_ranges if line and not _is_marker(line)]
    assert graded_hidden == dropped
    secrets = section.hidden_secrets({"t": spec}, release)
    assert set(dropped) <= set(secrets)
    assert not any(PUBLIC in s for s in secrets), "a public line is never scrubbed"
    expected = {"plain": [HIDDEN_A], "two blocks": [HIDDEN_A, HIDDEN_B], "inline marker text": []}
    assert dropped == expected.get(name, [HIDDEN_A])


@pytest.mark.parametrize("name", sorted(set(CELLS) - {"inline marker text"}))
def test_a_failure_on_a_hidden_line_is_reported_inside_the_hidden_range(name):
    """The harness compares Python's line number of a failure with these ranges (CRLF included)."""
    source = markers.render(CELLS[name], solutions="markers", hidden="markers")
    ranges = markers.hidden_ranges(source)

    def failing_line(code: str, hidden_ok: bool) -> int:
        env = {"secret_value_alpha": (lambda x: x ** 3) if hidden_ok else (lambda x: 0),
               "secret_value_beta": lambda xs: [2 * x for x in xs], "public_check_gamma": lambda x: x * x}
        try:
            exec(compile(code, "<test>", "exec"), env)
        except AssertionError as exc:
            return exc.__traceback__.tb_next.tb_lineno
        raise AssertionError("the hidden check should fail")

    line = failing_line(source, hidden_ok=False)
    assert any(a <= line <= b for a, b in ranges), (line, ranges)
    public_fails = source.replace("public_check_gamma(2) == 4", "public_check_gamma(2) == 5")
    line = failing_line(public_fails, hidden_ok=True)
    assert not any(a <= line <= b for a, b in ranges), (line, ranges)


def test_malformed_markers_are_refused_by_the_build():
    """Cells the two could read differently never reach the grader: the build stops on them."""
    for cell in ("### BEGIN HIDDEN TESTS extra\nx = 1\n### END HIDDEN TESTS\n",
                 "###\tBEGIN HIDDEN TESTS\nx = 1\n###\tEND HIDDEN TESTS\n",
                 "### begin hidden tests\nx = 1\n### end hidden tests\n",
                 "### BEGIN HIDDEN TESTS\nx = 1\n"):
        assert markers.scan(cell)[1], cell
