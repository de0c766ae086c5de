"""Texts of any length for Telegram: how long Telegram counts a text, and where to cut it.

Telegram takes at most 4,096 characters a message, counted after entity parsing (HTML tags do
not count, ``&amp;`` is one character) and in UTF-16 code units (an emoji outside the BMP is two).
A longer screen goes as several messages: whole blocks (paragraphs, or the blocks a view hands
over) are kept together; a block too long on its own is cut at a line, else a word boundary.
In HTML every part is balanced: a tag open at a cut is closed and opened again in the next part.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LIMIT = 4096
_ATOMS = re.compile(r"<[^<>]*>|&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});|[\s\S]")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")
_SEPARATORS = ("\n\n", "\n", " ")

Text = str | Sequence[str]  # a text, or blocks a view wants kept whole (joined by a newline)


def _char_width(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _atoms(text: str, html: bool) -> tuple[list[str], list[int]]:
    """Indivisible pieces (a character, an HTML tag or entity) and their visible widths."""
    if not html:
        atoms = list(text)
        return atoms, [_char_width(a) for a in atoms]
    atoms = _ATOMS.findall(text)
    widths = [0 if a[0] == "<" and len(a) > 1 else 1 if a[0] == "&" and len(a) > 1
              else _char_width(a) for a in atoms]
    return atoms, widths


def width(text: str, html: bool = False) -> int:
    """The length Telegram checks against its limit."""
    if not html:
        return sum(_char_width(c) for c in text) if not text.isascii() else len(text)
    return sum(_atoms(text, html)[1])


def _cut_point(atoms: list[str], start: int, end: int, mid: int) -> tuple[int, int]:
    """Where to end a part that may not reach past ``end``: the last blank line, else line
    break, else space — preferably in the second half — else ``end`` itself. Returns the end of
    the part and the start of the next one (the separator is dropped)."""
    for low in (mid, start + 1):
        for sep in _SEPARATORS:
            first = sep[0]
            for j in range(end, low - 1, -1):
                if atoms[j] == first and (len(sep) == 1 or (
                        j + 1 < len(atoms) and atoms[j + 1] == sep[1])):
                    return j, j + len(sep)
    return end, end


def _split_atoms(text: str, html: bool, limit: int) -> list[str]:
    atoms, widths = _atoms(text, html)
    parts: list[str] = []
    start, n = 0, len(atoms)
    while start < n:
        total, end, mid = 0, start, start + 1
        while end < n and total + widths[end] <= limit:
            total += widths[end]
            end += 1
            if total <= limit // 2:
                mid = end
        if end >= n:
            parts.append("".join(atoms[start:]))
            break
        if end == start:  # a single atom wider than the limit (cannot happen for limit >= 2)
            end = start + 1
        stop, after = _cut_point(atoms, start, end, max(mid, start + 1))
        parts.append("".join(atoms[start:stop]))
        start = after
    return parts


def _balance(parts: list[str]) -> list[str]:
    """Close the tags open at the end of each part and open them again in the next."""
    balanced = []
    stack: list[tuple[str, str]] = []  # (name, the opening tag as written)
    for part in parts:
        prefix = "".join(raw for _name, raw in stack)
        for raw in re.findall(r"<[^<>]*>", part):
            m = _TAG.match(raw)
            if m is None:
                continue
            closing, name = m.group(1) == "/", m.group(2).lower()
            if not closing:
                stack.append((name, raw))
            else:
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][0] == name:
                        del stack[i]
                        break
        suffix = "".join(f"</{name}>" for name, _raw in reversed(stack))
        balanced.append(prefix + part + suffix)
    return balanced


def split_text(text: str, html: bool = False, limit: int = LIMIT) -> list[str]:
    """``text`` as parts of at most ``limit``; nothing is lost but the separators cut at."""
    if width(text, html) <= limit:
        return [text]
    parts = _split_atoms(text, html, limit)
    if html:
        parts = _balance(parts)
    return [p for p in parts if _visible(p, html)]


def _visible(part: str, html: bool) -> bool:
    if html:
        part = re.sub(r"<[^<>]*>", "", part)
    return bool(part.strip())


def fit(text: Text, html: bool = False, limit: int = LIMIT, joiner: str = "\n") -> list[str]:
    """The messages for a screen. Blocks (a sequence) are packed whole while they fit, joined by
    ``joiner``; a text is cut at blank lines, lines, then words."""
    if isinstance(text, str):
        return split_text(text, html, limit)
    parts: list[str] = []
    current, current_width = "", 0
    gap = width(joiner, html)
    for block in text:
        w = width(block, html)
        if current and current_width + gap + w <= limit:
            current, current_width = current + joiner + block, current_width + gap + w
            continue
        if w > limit:  # cut the block, its first part joining what is gathered so far
            pieces = split_text(current + joiner + block if current else block, html, limit)
        else:
            if current:
                parts.append(current)
            pieces = [block]
        parts += pieces[:-1]
        current = pieces[-1] if pieces else ""
        current_width = width(current, html)
    if current or not parts:
        parts.append(current)
    if len(parts) > 1:  # an empty line between blocks is not kept at a part's edge
        parts = [p.strip("\n") for p in parts if _visible(p, html)]
    return parts
