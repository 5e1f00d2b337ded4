"""String ``format`` values compiled to regexes, and the matching format checks for the validator.

Each regex is written over decoded characters that JSON never escapes, so it reads the same over
the encoded text. The checker for a format is the same regex (``re.fullmatch``), so the grammar and
the local validator agree exactly on what a ``date-time`` is.
"""

from __future__ import annotations

import re
from typing import Callable

_D = "[0-9]"
_YEAR = f"(?:{_D}{{3}}[1-9]|{_D}{{2}}[1-9]{_D}|{_D}[1-9]{_D}{{2}}|[1-9]{_D}{{3}})"
_LEAP_YEAR = f"(?:{_D}{_D}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (
    f"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]{_D}|3[01])"
    f"|(?:0[469]|11)-(?:0[1-9]|[12]{_D}|30)"
    f"|02-(?:0[1-9]|1{_D}|2[0-8]))"
)
DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_OFFSET = f"(?:[zZ]|[+\\-](?:[01]{_D}|2[0-3]):[0-5]{_D})"
TIME = f"(?:[01]{_D}|2[0-3]):[0-5]{_D}:[0-5]{_D}(?:\\.{_D}+)?{_OFFSET}"
DATE_TIME = f"{DATE}[tT]{TIME}"
_HEX = "[0-9a-fA-F]"
UUID = f"{_HEX}{{8}}\\x2d{_HEX}{{4}}\\x2d{_HEX}{{4}}\\x2d{_HEX}{{4}}\\x2d{_HEX}{{12}}"
_OCTET = f"(?:25[0-5]|2[0-4]{_D}|1{_D}{_D}|[1-9]{_D}|{_D})"
IPV4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"
_ATEXT = "[A-Za-z0-9!#$%\\&'*+\\-\\x2f=?\\^_`{|}\\~]"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?"
EMAIL = f"{_ATEXT}+(?:\\.{_ATEXT}+)*@{_LABEL}(?:\\.{_LABEL})*"

_URI_CHAR = "(?:[A-Za-z0-9\\-._\\~:\\x2f?#\\[\\]@!$\\&'()*+,;=]|%[0-9a-fA-F]{2})"
URI = f"[A-Za-z][A-Za-z0-9+.\\-]*:{_URI_CHAR}*"
URI_REFERENCE = f"{_URI_CHAR}*"
HOSTNAME = f"{_LABEL}(?:\\.{_LABEL})*"

FORMATS: dict[str, str] = {
    "date": DATE,
    "date-time": DATE_TIME,
    "time": TIME,
    "uuid": UUID,
    "email": EMAIL,
    "ipv4": IPV4,
    "uri": URI,
    "uri-reference": URI_REFERENCE,
    "hostname": HOSTNAME,
}
"""format name -> regex over the string contents (both engines read it the same way)."""

_COMPILED = {name: re.compile(rx) for name, rx in FORMATS.items()}


def checker(name: str) -> Callable[[object], bool]:
    pattern = _COMPILED[name]

    def check(instance: object) -> bool:
        return not isinstance(instance, str) or pattern.fullmatch(instance) is not None

    return check
