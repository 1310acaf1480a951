"""Named regions of a source file: find one, blank it, put the original back.

A region is what lies between `# --8<-- [start:NAME]` and `# --8<-- [end:NAME]`
(the book's snippet markers). Blanking keeps both marker lines, so the
region can be found again in the learner's file, and puts in its place the
exercise's instructions as comments and a `raise` that says the exercise is
not done yet, indented like the start marker so the file still parses.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

__all__ = [
    "Region",
    "RegionError",
    "apply_patches",
    "blank_line",
    "blank_region",
    "find_region",
    "not_done_sentinel",
    "redact_bug_names",
    "replace_region",
]

_MARKER = re.compile(r"^(?P<indent>[ \t]*)# --8<-- \[(?P<kind>start|end):(?P<name>[\w.-]+)\]\s*$")
STUB_WIDTH = 92  # comment lines wrapped to this width (ruff's limit is 100)


class RegionError(ValueError):
    """A region that cannot be found or used: one line for a person."""


@dataclass(frozen=True)
class Region:
    """Where a region lies in a text: lines [start, end) between the markers."""

    name: str
    start: int  # index of the first line after the start marker
    end: int  # index of the end marker line
    indent: str  # the start marker's indentation

    @property
    def first_line_number(self) -> int:
        """1-based number of the region's first line (for messages)."""
        return self.start + 1


def find_region(text: str, name: str) -> Region:
    """The region NAME in `text`; RegionError if a marker is missing or doubled."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _is_marker(line, "start", name)]
    ends = [i for i, line in enumerate(lines) if _is_marker(line, "end", name)]
    if len(starts) != 1 or len(ends) != 1:
        raise RegionError(
            f"region {name!r}: expected one start and one end marker, "
            f"found {len(starts)} and {len(ends)}"
        )
    if ends[0] <= starts[0]:
        raise RegionError(f"region {name!r}: the end marker comes before the start marker")
    match = _MARKER.match(lines[starts[0]].rstrip("\n"))
    assert match is not None
    return Region(name, starts[0] + 1, ends[0], match.group("indent"))


def region_text(text: str, name: str) -> str:
    """The lines of region NAME (without the markers)."""
    region = find_region(text, name)
    return "".join(text.splitlines(keepends=True)[region.start : region.end])


def replace_region(text: str, name: str, body: str) -> str:
    """`text` with region NAME's lines replaced by `body` (markers kept)."""
    region = find_region(text, name)
    lines = text.splitlines(keepends=True)
    if body and not body.endswith("\n"):
        body += "\n"
    return "".join(lines[: region.start]) + body + "".join(lines[region.end :])


def not_done_sentinel(exercise_id: str) -> str:
    """The words the stub raises; their presence in a file means "still blank"."""
    return f"d11 learn: {exercise_id} is not done yet"


def blank_line(text: str, name: str, exercise_id: str) -> int:
    """The 1-based line a learner edits in region NAME: the stub's `raise`, the line to
    replace; the region's first line once the raise is gone (RegionError if no region).

    `d11 learn start` points there and the check's "still raises" names it, so
    the two never send a learner to different lines of one blank.
    """
    region = find_region(text, name)
    lines = text.splitlines()
    sentinel = not_done_sentinel(exercise_id)
    for i in range(region.start, region.end):
        if sentinel in lines[i]:
            return i + 1
    return region.first_line_number


def blank_region(text: str, name: str, exercise_id: str, instructions: str) -> str:
    """`text` with region NAME replaced by the exercise's stub."""
    region = find_region(text, name)
    pad = region.indent
    width = max(40, STUB_WIDTH - len(pad))
    comments = [f"{pad}# Exercise {exercise_id}: fill in this blank."]
    for paragraph in instructions.strip().split("\n\n"):
        for line in textwrap.wrap(" ".join(paragraph.split()), width=width):
            comments.append(f"{pad}# {line}")
        comments.append(f"{pad}#")
    comments.append(f"{pad}# Then delete the raise below and run: d11 learn check {exercise_id}")
    stub = "\n".join(comments) + "\n"
    stub += f'{pad}raise NotImplementedError("{not_done_sentinel(exercise_id)}")\n'
    return replace_region(text, name, stub)


def apply_patches(text: str, patches: tuple[tuple[str, str], ...]) -> str:
    """Replace each `old` (which must occur exactly once) by `new`."""
    for old, new in patches:
        count = text.count(old)
        if count != 1:
            raise RegionError(f"patch expects {old.strip()[:60]!r} once, found it {count} times")
        text = text.replace(old, new)
    return text


def _is_marker(line: str, kind: str, name: str) -> bool:
    match = _MARKER.match(line.rstrip("\n"))
    return match is not None and match.group("kind") == kind and match.group("name") == name


# What gives a find-bug's answer away in the file it is planted in: the bug zoo's
# switches say their mutation's name beside the line (`# mutation: NAME -- ...`,
# maybe continued on the next comment line), and a comment may tell the story of
# the tracker's issue the bug comes from. Only comments: the switches stay.
_ISSUE_STORY = re.compile(r"[ \t]*\((?:[A-Z][\w]* )?issue \d+:[^)]*\)")
_ZOO_NOTE = re.compile(r"[ \t]*\(mutation: [^)\n]*\)")
_ZOO_TRAILING = re.compile(r"(?<=\S)[ \t]+# mutation: [^\n]*")
_ZOO_LINE = re.compile(r"^[ \t]*# mutation: [^\n]*\n", re.MULTILINE)


def redact_bug_names(text: str) -> str:
    """`text` without the comments that name a planted bug (see above)."""
    text = _ISSUE_STORY.sub("", text)
    text = _ZOO_NOTE.sub("", text)
    text = _ZOO_TRAILING.sub("", text)
    out: list[str] = []
    continued = False  # the last comment line removed ended mid-sentence
    for line in text.splitlines(keepends=True):
        comment = line.lstrip().startswith("#")
        if _ZOO_LINE.fullmatch(line if line.endswith("\n") else line + "\n"):
            continued = not line.rstrip().endswith(".")
            continue
        if continued and comment:
            continued = not line.rstrip().endswith(".")
            continue
        continued = False
        out.append(line)
    return "".join(out)
