"""Import files as text: which encoding they are in, and where their lines end.

Accepted: UTF-8 with or without a byte order mark, UTF-16 with one, and cp1251 (what Excel on a
Russian Windows saves as "CSV"). cp1251 decodes almost any bytes, so it is taken only for a file
that is not UTF-8, whose bytes above 0x7F hardly ever form UTF-8 sequences, and that reads as
Cyrillic and ordinary punctuation; a UTF-8 file with a stray bad byte is reported at that byte.

Only ``\\n`` and ``\\r\\n`` end a line: U+2028, U+0085, form feeds and the other characters that
``str.splitlines`` breaks at stay inside the line (JSON writers put them into strings raw).
"""

from __future__ import annotations

import codecs

from core.errors import InputInvalid, Problem
from core.identity import looks_personal

UTF8 = "UTF-8"
UTF8_BOM = "UTF-8 with BOM"
UTF16 = "UTF-16"
CP1251 = "cp1251"

# What cp1251 text holds above ASCII: letters, and the punctuation Russian text uses.
_CP1251_PUNCTUATION = set("«»—–№…„“”‘’•·°±§\u00a0")


NOT_SHOWN = "(not shown: looks like a phone number, SNILS or e-mail)"


def quote(value: str, limit: int = 40) -> str:
    """A value from the file for a message: quoted, or withheld if it may identify a person."""
    if looks_personal(value):
        return NOT_SHOWN
    return repr(value[:limit])


def shown(value: str) -> str:
    """An identifier from the file (a student id) for a message, withheld like ``quote``."""
    return NOT_SHOWN if looks_personal(value) else value


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _problem(filename: str, line: int, message: str) -> InputInvalid:
    return InputInvalid([Problem(filename, line, "", message)])


def _looks_cp1251(data: bytes) -> bool:
    """Not UTF-8, and read as cp1251 it is Cyrillic text rather than stray bytes."""
    escaped = data.decode("utf-8", errors="surrogateescape")
    bad = good = 0
    for ch in escaped:
        if ch > "\x7f":
            if "\udc80" <= ch <= "\udcff":
                bad += 1
            else:
                good += 1
    if bad == 0 or good * 20 > bad:
        return False  # UTF-8 with a few bad bytes, not another encoding
    try:
        text = data.decode("cp1251")
    except UnicodeDecodeError:  # 0x98 is the one byte cp1251 leaves undefined
        return False
    high = [ch for ch in text if ch > "\x7f"]
    plausible = sum(1 for ch in high if "\u0400" <= ch <= "\u04ff" or ch in _CP1251_PUNCTUATION)
    controls = any(ch < " " and ch not in "\t\r\n" for ch in text)
    return not controls and plausible * 10 >= len(high) * 9


def decode(data: bytes, filename: str) -> tuple[str, str]:
    """``(text, encoding name)``; an unreadable file is an ``InputInvalid`` naming the line."""
    if data.startswith(codecs.BOM_UTF8):
        body, name = data[len(codecs.BOM_UTF8):], UTF8_BOM
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), UTF16
        except UnicodeDecodeError as exc:
            line = data[:exc.start].decode("utf-16", errors="replace").count("\n") + 1
            raise _problem(filename, line, f"not UTF-16 text: cannot be read at byte offset"
                                           f" {exc.start}") from None
    else:
        body, name = data, UTF8
    nul = body.find(b"\x00")
    if nul >= 0:
        raise _problem(filename, _line_of(body, nul), "contains NUL bytes: UTF-16 without a"
                                                      " byte order mark? Save it as UTF-8")
    try:
        return body.decode("utf-8"), name
    except UnicodeDecodeError as exc:
        if name == UTF8 and _looks_cp1251(body):
            return body.decode("cp1251"), CP1251
        offset = exc.start + (len(data) - len(body))
        raise _problem(filename, _line_of(body, exc.start),
                       f"not UTF-8 text: byte 0x{body[exc.start]:02X} at byte offset {offset}"
                       " cannot be read (not cp1251 either)") from None


def split_lines(text: str) -> list[str]:
    """Lines ended by ``\\n`` or ``\\r\\n`` only; a final newline makes no extra empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_text(path: str) -> tuple[str, str]:
    with open(path, "rb") as fh:
        data = fh.read()
    return decode(data, path)
