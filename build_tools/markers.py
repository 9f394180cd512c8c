"""nbgrader's code markers, scanned once with line numbers.

``scan`` turns a code cell's lines into blocks (plain lines, solution, stub, hidden tests) or
problems; the split transforms then choose what each audience sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = re.compile(r"^(?P<indent>\s*)### (?P<verb>BEGIN|END) (?P<what>SOLUTION|STUB|HIDDEN TESTS)\s*$")


@dataclass
class Block:
    kind: str  # "plain" | "solution" | "stub" | "hidden"
    lines: list[str]  # without the marker lines
    start: int  # offset of the BEGIN marker (or first line) within the cell
    indent: str = ""
    end: int | None = None  # offset of the END marker; None for plain text and a block never closed


def scan(source: str) -> tuple[list[Block], list[tuple[int, str]]]:
    """Split a cell into blocks. Returns (blocks, [(line offset, problem)])."""
    blocks: list[Block] = []
    problems: list[tuple[int, str]] = []
    kinds = {"SOLUTION": "solution", "STUB": "stub", "HIDDEN TESTS": "hidden"}
    open_block: Block | None = None
    plain = Block("plain", [], 0)
    for offset, line in enumerate(source.split("\n")):
        match = MARKER.match(line)
        # A marker with odd spacing/case is almost always a typo that would leak a solution.
        if not match and re.match(r"^\s*#+\s*(BEGIN|END)\s+(SOLUTION|STUB|HIDDEN\s+TESTS)\b", line, re.I):
            problems.append((offset, f"malformed marker {line.strip()!r}; write e.g. '### BEGIN SOLUTION'"))
            continue
        if not match:
            (open_block or plain).lines.append(line)
            continue
        verb, what = match.group("verb"), match.group("what")
        if verb == "BEGIN":
            if open_block is not None:
                problems.append((offset, f"'### BEGIN {what}' inside an open {open_block.kind} block "
                                         f"(opened on the cell's line {open_block.start + 1})"))
                continue
            if plain.lines:
                blocks.append(plain)
            plain = Block("plain", [], offset + 1)
            open_block = Block(kinds[what], [], offset, match.group("indent"))
        else:
            if open_block is None or open_block.kind != kinds[what]:
                problems.append((offset, f"'### END {what}' without a matching '### BEGIN {what}'"))
                continue
            open_block.end = offset
            blocks.append(open_block)
            open_block = None
    if open_block is not None:
        name = {v: k for k, v in kinds.items()}[open_block.kind]
        problems.append((open_block.start, f"'### BEGIN {name}' is never closed (add '### END {name}')"))
        blocks.append(open_block)
    if plain.lines:
        blocks.append(plain)
    # A stub must directly follow a solution block (blank lines between them are allowed).
    for i, block in enumerate(blocks):
        if block.kind != "stub":
            continue
        previous = [b for b in blocks[:i] if not (b.kind == "plain" and not "".join(b.lines).strip())]
        if not previous or previous[-1].kind != "solution":
            problems.append((block.start, "'### BEGIN STUB' must come straight after an '### END SOLUTION'"))
        for j, line in enumerate(block.lines):
            if line.strip() and not line.lstrip().startswith("#"):
                problems.append((block.start + 1 + j, "stub lines must be commented out with '# ' "
                                                      "(the exercise notebook uncomments them)"))
    return blocks, problems


def _uncomment(line: str) -> str:
    stripped = line.lstrip()
    indent = line[: len(line) - len(stripped)]
    if stripped.startswith("# "):
        return indent + stripped[2:]
    if stripped.startswith("#"):
        return indent + stripped[1:]
    return line


def render(source: str, solutions: str, hidden: str) -> str:
    """Rebuild a cell's source for one audience.

    solutions: "keep" (solution code, no markers), "markers" (nbgrader source: markers kept, stubs
    dropped) or "stub" (the exercise: stub or ``raise NotImplementedError()``).
    hidden: "drop" or "markers" (kept with their markers, for the grader's source notebook).
    """
    blocks, _ = scan(source)
    out: list[str] = []
    for i, block in enumerate(blocks):
        if block.kind == "plain":
            out.extend(block.lines)
        elif block.kind == "solution":
            if solutions == "keep":
                out.extend(block.lines)
            elif solutions == "markers":
                out.append(f"{block.indent}### BEGIN SOLUTION")
                out.extend(block.lines)
                out.append(f"{block.indent}### END SOLUTION")
            else:
                following = [b for b in blocks[i + 1:] if not (b.kind == "plain" and not "".join(b.lines).strip())]
                if not (following and following[0].kind == "stub"):
                    out.append(f"{block.indent}raise NotImplementedError()")
        elif block.kind == "stub":
            if solutions == "stub":
                out.extend(_uncomment(line) for line in block.lines)
        elif block.kind == "hidden":
            if hidden == "markers":
                out.append(f"{block.indent}### BEGIN HIDDEN TESTS")
                out.extend(block.lines)
                out.append(f"{block.indent}### END HIDDEN TESTS")
    # Collapse the blank lines a removed block leaves behind.
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def has_solution(source: str) -> bool:
    return any(b.kind == "solution" for b in scan(source)[0])


def has_hidden(source: str) -> bool:
    return any(b.kind == "hidden" for b in scan(source)[0])


def marker_lines(source: str) -> list[str]:
    """Lines inside solution or hidden-test blocks (used to prove nothing leaked)."""
    blocks, _ = scan(source)
    return [line for b in blocks if b.kind in ("solution", "hidden") for line in b.lines]


def hidden_lines(source: str) -> list[str]:
    blocks, _ = scan(source)
    return [line for b in blocks if b.kind == "hidden" for line in b.lines]


def hidden_ranges(source: str) -> list[tuple[int, int]]:
    """Hidden-test blocks as 1-based inclusive line ranges, marker lines included: the line numbers
    Python reports for the cell's code (the grader uses them to tell a hidden failure from a public
    one). A block never closed runs to the last line."""
    last_line = source.count("\n") + 1
    return [(b.start + 1, b.end + 1 if b.end is not None else last_line)
            for b in scan(source)[0] if b.kind == "hidden"]
