"""Personal identifiers: normalization, validation and keyed hashing.

Phones, SNILS and e-mails are used only for matching a person. They are never stored or logged in
clear: the database keeps an HMAC-SHA256 of the normalized value keyed with the instance secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Crockford's base32 alphabet: no I, L, O, U, so codes survive handwriting and dictation.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 12 symbols x 5 bits = 60 bits of randomness
_CODE_TRANSLATE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalize_phone(raw: str) -> str | None:
    """Return a Russian phone number as +7XXXXXXXXXX, or None if it is not one.

    Accepts the usual written forms: ``8 (900) 123-45-67``, ``+7 900 1234567``, ``79001234567``,
    ``9001234567``.
    """
    text = raw.strip()
    if not text or re.search(r"[^\d\s()+\-.]", text):
        return None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        if len(digits) == 11 and digits[0] == "7":
            return "+" + digits
        return None
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] in "3489":
        return "+7" + digits
    return None


# Nine digits or more, whatever separates them: a phone number or a SNILS, whole or nearly.
_DIGIT_RUN = re.compile(r"\d(?:[\s\-().+/]*\d){8,}")


def looks_personal(text: str) -> bool:
    """Whether a value may be a phone number, SNILS or e-mail (in whatever column it was typed),
    so that a message about it must not quote it."""
    return "@" in text or _DIGIT_RUN.search(text) is not None


def snils_digits(raw: str) -> str | None:
    """Return the 11 digits of a SNILS written as ``123-456-789 64`` (or plain), or None."""
    text = raw.strip()
    if re.search(r"[^\d\s\-]", text):
        return None
    digits = re.sub(r"\D", "", text)
    return digits if len(digits) == 11 else None


def snils_control(number9: str) -> int:
    """The control number of the first nine SNILS digits (Pension Fund rules)."""
    total = sum(int(d) * (9 - i) for i, d in enumerate(number9))
    if total < 100:
        return total
    if total in (100, 101):
        return 0
    rest = total % 101
    return 0 if rest == 100 else rest


def snils_is_valid(digits: str) -> bool:
    """Check a SNILS control number. Numbers up to 001-001-998 carry no checked control."""
    if len(digits) != 11 or not digits.isdigit():
        return False
    number, control = digits[:9], int(digits[9:])
    if int(number) <= 1001998:
        return True
    return snils_control(number) == control


def normalize_email(raw: str) -> str | None:
    text = raw.strip().lower()
    if not text or not _EMAIL_RE.match(text) or len(text) > 254:
        return None
    return text


def new_link_code() -> str:
    """A fresh one-time code: 12 symbols of Crockford base32 (60 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str | None:
    """Canonical form of a typed code: upper case, no spaces or dashes, O→0, I/L→1."""
    text = re.sub(r"[\s\-]", "", raw).upper().translate(_CODE_TRANSLATE)
    if len(text) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in text):
        return None
    return text


def format_code(code: str) -> str:
    """``ABCD-EFGH-JKMN`` for printing."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


class Hasher:
    """Keyed hashes of identifiers. The kind is mixed in so a phone never equals an e-mail hash."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._secret = secret

    def _digest(self, kind: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{kind}:{value}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def phone(self, normalized: str) -> str:
        return self._digest("phone", normalized)

    def email(self, normalized: str) -> str:
        return self._digest("email", normalized)

    def snils(self, digits: str) -> str:
        return self._digest("snils", digits)

    def code(self, normalized: str) -> str:
        return self._digest("code", normalized)

    def api_token(self, token: str) -> str:
        return self._digest("api_token", token)


API_TOKEN_PREFIX = "diary_"


def new_api_token() -> str:
    """A fresh API bearer token: a recognisable prefix and 256 random bits (URL-safe)."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)
