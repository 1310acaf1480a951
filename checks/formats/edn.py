"""A small EDN reader: enough of Clojure's data notation for Jepsen histories.

Reads nil, true/false, integers, floats, strings, characters, keywords,
symbols, vectors, lists, maps and sets; skips comments (`;`), commas and
discarded forms (`#_`); reads a tagged form (`#inst "..."`,
`#jepsen.history.Op{...}`) as the form itself. Keywords and symbols become
`Keyword` / `Symbol`, which are `str` subclasses: `Keyword("cas") == "cas"`.
Vectors and lists become Python lists, sets frozensets; a collection used as a
map key or set element becomes a tuple so it can be hashed.

Every error is an `EdnError` carrying the line it happened on; nesting is
bounded, so no input can exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DEPTH_MAX = 100  # Jepsen values nest a few levels; anything deeper is not a history

_DELIMS = frozenset(' \t\r\n,;()[]{}"')
_CHAR_NAMES = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r", "formfeed": "\f"}
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


class EdnError(ValueError):
    """Malformed EDN; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class Keyword(str):
    """An EDN keyword (`:cas` reads as Keyword("cas"))."""

    __slots__ = ()

    def __repr__(self) -> str:
        return ":" + str(self)


KEYWORDS_SHARED_MAX = 100_000  # distinct keywords kept for sharing; past it, fresh ones
_KEYWORDS: dict[str, Keyword] = {}


def keyword(name: str) -> Keyword:
    """The keyword `:name`, one object per name (a history repeats a few thousand times)."""
    k = _KEYWORDS.get(name)
    if k is None:
        k = Keyword(name)
        if len(_KEYWORDS) < KEYWORDS_SHARED_MAX:
            _KEYWORDS[name] = k
    return k


class Symbol(str):
    """An EDN symbol other than nil/true/false."""

    __slots__ = ()


def hashable(x: Any) -> Any:
    """A hashable stand-in for a value used as a map key or set element."""
    if isinstance(x, list):
        return tuple(hashable(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted(((hashable(k), hashable(v)) for k, v in x.items()), key=repr))
    return x


class Reader:
    """A cursor over EDN text; `read()` returns the next form."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    # -- whitespace -----------------------------------------------------
    def skip_space(self, depth: int = 0) -> None:
        """Skip whitespace, commas, comments and `#_` discarded forms."""
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c == "\n":
                self.line += 1
                self.pos += 1
            elif c in " \t\r,\f":
                self.pos += 1
            elif c == ";":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("#_", self.pos):
                self.pos += 2
                self.read(depth + 1)
            else:
                return

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def peek(self, depth: int = 0) -> str:
        """The next significant character ('' at the end)."""
        self.skip_space(depth)
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- forms ------------------------------------------------------------
    def read(self, depth: int = 0) -> Any:
        """Read one form; raises EdnError at the end of input."""
        if depth > DEPTH_MAX:
            raise EdnError(self.line, f"nested deeper than {DEPTH_MAX} levels")
        self.skip_space(depth)
        if self.pos >= len(self.text):
            raise EdnError(self.line, "unexpected end of input")
        c = self.text[self.pos]
        if c in "[(":
            self.pos += 1
            return self._read_seq("]" if c == "[" else ")", depth)
        if c == "{":
            self.pos += 1
            return self._read_map(depth)
        if c in ")]}":
            raise EdnError(self.line, f"unexpected {c!r}")
        if c == '"':
            return self._read_string()
        if c == "\\":
            return self._read_char()
        if c == "#":
            return self._read_dispatch(depth)
        if c == ":":
            token = self._token(self.pos + 1)
            if not token:
                raise EdnError(self.line, "a keyword needs a name after ':'")
            return keyword(token)
        return self._read_atom()

    def items(self, closer: str) -> Iterator[tuple[int, Any]]:
        """Yield (line, form) for each element up to `closer`, which is consumed."""
        while True:
            c = self.peek()
            if c == closer:
                self.pos += 1
                return
            if not c:
                raise EdnError(self.line, f"missing {closer!r} before the end of input")
            line = self.line
            yield line, self.read(depth=1)

    def _read_seq(self, closer: str, depth: int) -> list[Any]:
        out: list[Any] = []
        while True:
            c = self.peek(depth)
            if c == closer:
                self.pos += 1
                return out
            if not c:
                raise EdnError(self.line, f"missing {closer!r} before the end of input")
            out.append(self.read(depth + 1))

    def _read_map(self, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        while True:
            c = self.peek(depth)
            if c == "}":
                self.pos += 1
                return out
            if not c:
                raise EdnError(self.line, "missing '}' before the end of input")
            key = hashable(self.read(depth + 1))
            if self.peek(depth) == "}":
                raise EdnError(self.line, "a map needs an even number of forms")
            if key in out:
                raise EdnError(self.line, f"duplicate map key {key!r}")
            out[key] = self.read(depth + 1)

    def _read_dispatch(self, depth: int) -> Any:
        nxt = self.text[self.pos + 1 : self.pos + 2]
        if nxt == "{":
            self.pos += 2
            return frozenset(hashable(v) for v in self._read_seq("}", depth))
        token = self._token(self.pos + 1)
        if not token or not token[0].isalpha():
            raise EdnError(self.line, f"unsupported dispatch '#{nxt}'")
        # A tagged element: #inst "...", #uuid "...", or a record such as
        # #jepsen.history.Op{...}; the tag says how to interpret the form,
        # and for a history the form itself is what we need.
        return self.read(depth + 1)

    def _token(self, start: int) -> str:
        """The token starting at `start` (up to a delimiter); moves past it."""
        text, n, end = self.text, len(self.text), start
        while end < n and text[end] not in _DELIMS:
            end += 1
        self.pos = end
        return text[start:end]

    def _read_atom(self) -> Any:
        line = self.line
        token = self._token(self.pos)
        if token == "nil":
            return None
        if token == "true":
            return True
        if token == "false":
            return False
        head = token[1:] if token[:1] in "+-" else token
        if head[:1].isdigit():
            return _number(token, line)
        if not token:
            raise EdnError(line, f"unexpected character {self.text[self.pos]!r}")
        return Symbol(token)

    def _read_string(self) -> str:
        text, n = self.text, len(self.text)
        start_line = self.line
        pos = self.pos + 1
        out: list[str] = []
        while True:
            if pos >= n:
                raise EdnError(start_line, "unterminated string")
            c = text[pos]
            if c == '"':
                self.pos = pos + 1
                return "".join(out)
            if c == "\n":
                self.line += 1
            if c == "\\":
                esc = text[pos + 1 : pos + 2]
                if esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                    pos += 2
                    continue
                if esc == "u":
                    digits = text[pos + 2 : pos + 6]
                    if len(digits) != 4 or any(d not in _HEX for d in digits):
                        raise EdnError(self.line, "bad \\u escape in string")
                    code = int(digits, 16)
                    pos += 6
                    if 0xD800 <= code <= 0xDBFF and text[pos : pos + 2] == "\\u":
                        low = text[pos + 2 : pos + 6]
                        if len(low) == 4 and all(d in _HEX for d in low):
                            low_code = int(low, 16)
                            if 0xDC00 <= low_code <= 0xDFFF:  # a UTF-16 pair: one character
                                code = 0x10000 + ((code - 0xD800) << 10) + (low_code - 0xDC00)
                                pos += 6
                    if 0xD800 <= code <= 0xDFFF:
                        raise EdnError(self.line, f"\\u{digits} is a lone surrogate, not text")
                    out.append(chr(code))
                    continue
                raise EdnError(self.line, f"unknown escape \\{esc} in string")
            out.append(c)
            pos += 1

    def _read_char(self) -> str:
        line = self.line
        first = self.text[self.pos + 1 : self.pos + 2]
        if not first:
            raise EdnError(line, "a character literal needs a character after '\\'")
        if first in _DELIMS:  # \( or \" or \, : the character itself
            self.pos += 2
            if first == "\n":
                self.line += 1
            return first
        name = self._token(self.pos + 1)
        if len(name) == 1:
            return name
        if name in _CHAR_NAMES:
            return _CHAR_NAMES[name]
        if name.startswith("u") and len(name) == 5:
            try:
                code = int(name[1:], 16)
            except ValueError:
                code = -1
            if 0 <= code < 0xD800 or code > 0xDFFF:
                return chr(code)
        raise EdnError(line, f"unknown character literal \\{name}")


def _number(token: str, line: int) -> int | float:
    body = token[:-1] if token[-1:] in "NM" else token
    try:
        if any(c in body for c in ".eE"):
            value = float(body)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        return int(body, 10)
    except ValueError:
        raise EdnError(line, f"not a number: {token!r}") from None


def read_all(text: str) -> list[tuple[int, Any]]:
    """Every top-level form of `text`, with the line it starts on."""
    reader = Reader(text)
    out: list[tuple[int, Any]] = []
    while not reader.at_end():
        line = reader.line
        out.append((line, reader.read()))
    return out


def read_one(text: str) -> Any:
    """Exactly one form (as in one field of a log line)."""
    reader = Reader(text)
    form = reader.read()
    if not reader.at_end():
        raise EdnError(reader.line, f"unexpected text after the value: {text[reader.pos :]!r}")
    return form
