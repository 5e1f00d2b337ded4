"""String ``format`` values: regexes for the grammar, and exact checks for the validator.

``FORMATS`` holds the regexes the grammar states (written over decoded characters that JSON never
escapes, so they read the same over the encoded text); ``GRAMMAR_PATTERNS`` more, as patterns the
compiler translates like a schema's ``pattern`` (their characters may need escapes). ``CHECKS`` holds one checker for every format
of drafts 4 through 2020-12, implemented here (no optional packages: a check never silently goes
missing). A checker follows the RFC the specification names; the grammar regex is the same language
or, where noted, a documented narrower spelling (a leap second written in UTC, an e-mail without a
quoted local part or an address literal) or a wider one the validator refines (host names past 253
characters, ``xn--`` labels that are not valid punycode). ``format_checker()`` hands those checks to
jsonschema; ``asserted_formats()`` are the formats it then asserts, and any other is an annotation only.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

import jsonschema

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
TIME = (
    f"(?:(?:[01]{_D}|2[0-3]):[0-5]{_D}:[0-5]{_D}(?:\\.{_D}+)?{_OFFSET}"
    f"|23:59:60(?:\\.{_D}+)?(?:[zZ]|[+\\-]00:00))"
)
DATE_TIME = f"{DATE}[tT]{TIME}"
_HEX = "[0-9a-fA-F]"
UUID = f"{_HEX}{{8}}\\x2d{_HEX}{{4}}\\x2d{_HEX}{{4}}\\x2d{_HEX}{{4}}\\x2d{_HEX}{{12}}"
_OCTET = f"(?:25[0-5]|2[0-4]{_D}|1{_D}{_D}|[1-9]{_D}|{_D})"
IPV4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"
_ATEXT = "[A-Za-z0-9!#$%\\&'*+\\-\\x2f=?\\^_`{|}\\~]"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?"
EMAIL = f"{_ATEXT}+(?:\\.{_ATEXT}+)*@{_LABEL}(?:\\.{_LABEL})*"

# RFC 3986, appendix A
_PCT = "%[0-9a-fA-F]{2}"
_UNRESERVED_SUB = "A-Za-z0-9\\-._\\~!$\\&'()*+,;="
_PCHAR = f"(?:[{_UNRESERVED_SUB}:@]|{_PCT})"
_H16 = f"{_HEX}{{1,4}}"
_LS32 = f"(?:{_H16}:{_H16}|{_OCTET}(?:\\.{_OCTET}){{3}})"
IPV6 = (
    "(?:"
    f"(?:{_H16}:){{6}}{_LS32}"
    f"|::(?:{_H16}:){{5}}{_LS32}"
    f"|(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}"
    f"|(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}"
    f"|(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}"
    f"|(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}"
    f"|(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}"
    f"|(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}"
    f"|(?:(?:{_H16}:){{0,6}}{_H16})?::"
    ")"
)
_IP_LITERAL = f"\\[(?:{IPV6}|[vV]{_HEX}+\\.[{_UNRESERVED_SUB}:]+)\\]"
_REG_NAME = f"(?:[{_UNRESERVED_SUB}]|{_PCT})*"
_AUTHORITY = f"(?:(?:[{_UNRESERVED_SUB}:]|{_PCT})*@)?(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?"
_PATH_ABEMPTY = f"(?:\\x2f{_PCHAR}*)*"
_PATH_ABSOLUTE = f"\\x2f(?:{_PCHAR}+{_PATH_ABEMPTY})?"
_PATH_ROOTLESS = f"{_PCHAR}+{_PATH_ABEMPTY}"
_PATH_NOSCHEME = f"(?:[{_UNRESERVED_SUB}@]|{_PCT})+{_PATH_ABEMPTY}"
_QUERY = f"(?:{_PCHAR}|[\\x2f?])*"
_TAIL = f"(?:\\?{_QUERY})?(?:#{_QUERY})?"
URI = f"[A-Za-z][A-Za-z0-9+.\\-]*:(?:\\x2f\\x2f{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS})?{_TAIL}"
_RELATIVE_REF = f"(?:\\x2f\\x2f{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME})?{_TAIL}"
URI_REFERENCE = f"(?:{URI}|{_RELATIVE_REF})"
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


def _full(rx: str) -> Callable[[str], bool]:
    pattern = re.compile(rx)
    return lambda value: pattern.fullmatch(value) is not None


_ASCII_DIGITS = re.compile(r"[0-9]+")
_TIME_PARTS = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:[zZ]|([+\-])([0-9]{2}):([0-9]{2}))")


def _time(value: str) -> bool:
    """RFC 3339 full-time; second 60 only where the time in UTC is 23:59:60 (a leap second)."""
    m = _TIME_PARTS.fullmatch(value)
    if m is None:
        return False
    hh, mm, ss = int(m[1]), int(m[2]), int(m[3])
    oh, om = (int(m[5]), int(m[6])) if m[4] else (0, 0)
    if hh > 23 or mm > 59 or ss > 60 or oh > 23 or om > 59:
        return False
    if ss == 60:
        sign = -1 if m[4] == "-" else 1
        utc = (hh * 60 + mm - sign * (oh * 60 + om)) % 1440
        return utc == 23 * 60 + 59
    return True


_DATE_RX = re.compile(DATE)


def _date_time(value: str) -> bool:
    date, sep, time = value[:10], value[10:11], value[11:]
    return sep in ("T", "t") and _DATE_RX.fullmatch(date) is not None and _time(time)


_DUR_TIME = "T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DURATION = (
    f"P(?:(?:[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)(?:{_DUR_TIME})?|{_DUR_TIME}|[0-9]+W)"
)
_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")


def _hostname(value: str) -> bool:
    """RFC 1123 host name; ``xn--`` labels must be valid IDNA A-labels (RFC 5891)."""
    if not value or len(value) > 253 or not value.isascii():
        return False
    for label in value.split("."):
        if _LDH_LABEL.fullmatch(label) is None:
            return False
        if label[2:4] == "--":
            if label[:2].lower() != "xn":
                return False  # RFC 5891 4.2.3.1: hyphens in positions 3 and 4 only in an A-label
            if not _a_label(label):
                return False
    return True


def _a_label(label: str) -> bool:
    import idna

    try:
        ulabel = idna.decode(label.lower())
        return bool(ulabel) and idna.encode(ulabel).decode("ascii") == label.lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return False


_IDN_DOTS = re.compile("[.\u3002\uff0e\uff61]")


def _idn_hostname(value: str) -> bool:
    """RFC 5890/5891 internationalized host name (IDNA2008 via the ``idna`` package)."""
    import idna

    if not value:
        return False
    import unicodedata

    labels = [unicodedata.normalize("NFC", label) for label in _IDN_DOTS.split(value)]
    if any(not label for label in labels):
        return False
    try:
        encoded = [idna.alabel(label).decode("ascii") if not label.isascii() else label for label in labels]
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    if len(".".join(encoded)) > 253:
        return False
    try:
        for label in labels:
            if label.isascii():
                if not _hostname(label):
                    return False
            else:
                idna.check_label(label)
        if any(_is_rtl(c) for label in labels for c in label):
            for label in labels:
                idna.check_bidi(label, check_ltr=True)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return True


def _is_rtl(char: str) -> bool:
    import unicodedata

    return unicodedata.bidirectional(char) in ("R", "AL", "AN")


def _ipv6(value: str) -> bool:
    import ipaddress

    if not value.isascii() or "%" in value:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return _IPV6_RX.fullmatch(value) is not None  # no leading zeros in an embedded IPv4 part


_IPV6_RX = re.compile(IPV6)
_IPV4_RX = re.compile(IPV4)
_QUOTED_LOCAL = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*"
_LOCAL_RX = re.compile(f"{_DOT_ATOM}|{_QUOTED_LOCAL}")
_IDN_LOCAL_RX = re.compile(
    r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]+)*"
    r'|"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
)


def _mailbox(value: str, local_rx: re.Pattern[str], domain_ok: Callable[[str], bool]) -> bool:
    """RFC 5321 mailbox (RFC 6531 for the internationalized form)."""
    local, at, domain = value.rpartition("@")
    if not at or local_rx.fullmatch(local) is None or len(local.encode("utf-8")) > 64:
        return False
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        if literal[:5].lower() == "ipv6:":
            return _ipv6(literal[5:])
        return _IPV4_RX.fullmatch(literal) is not None
    return domain_ok(domain)


_URI_RX = re.compile(URI)
_URI_REFERENCE_RX = re.compile(URI_REFERENCE)


def _uri_authority_ok(value: str) -> bool:
    """The parts of RFC 3986 a regex leaves loose: an IPv6 literal must be a real address."""
    for literal in re.findall(r"\[([^\]]*)\]", value.split("?")[0].split("#")[0]):
        if not literal.lower().startswith("v") and not _ipv6(literal):
            return False
    return True


def _uri(value: str) -> bool:
    return _URI_RX.fullmatch(value) is not None and _uri_authority_ok(value)


def _uri_reference(value: str) -> bool:
    return _URI_REFERENCE_RX.fullmatch(value) is not None and _uri_authority_ok(value)


def _iri_to_uri(value: str) -> str | None:
    """Percent-encode the characters RFC 3987 adds to RFC 3986 (ucschar everywhere, iprivate in the
    query), or None if the text holds a character an IRI cannot."""
    out: list[str] = []
    in_query = False
    for ch in value:
        cp = ord(ch)
        if ch == "?" and not in_query:
            in_query = True
        elif ch == "#":
            in_query = False
        if cp < 0x80:
            out.append(ch)
            continue
        ucs = (
            0xA0 <= cp <= 0xD7FF
            or 0xF900 <= cp <= 0xFDCF
            or 0xFDF0 <= cp <= 0xFFEF
            or (0x10000 <= cp <= 0xEFFFD and (cp & 0xFFFF) <= 0xFFFD)
        )
        private = 0xE000 <= cp <= 0xF8FF or 0xF0000 <= cp <= 0xFFFFD or 0x100000 <= cp <= 0x10FFFD
        if not (ucs or (private and in_query)):
            return None
        out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


def _iri(value: str) -> bool:
    uri = _iri_to_uri(value)
    return uri is not None and _uri(uri)


def _iri_reference(value: str) -> bool:
    uri = _iri_to_uri(value)
    return uri is not None and _uri_reference(uri)


_LITERAL_CHARS = "\\x21\\x23\\x24\\x26-\\x3b\\x3d\\x3f-\\x5b\\x5d\\x5f\\x61-\\x7a\\x7e\\u00a0-\\ud7ff\\uf900-\\ufdcf\\ufdf0-\\uffef\\U00010000-\\U0010fffd"
_VARCHAR = "(?:[A-Za-z0-9_]|%[0-9a-fA-F]{2})"
_VARSPEC = f"{_VARCHAR}(?:\\.?{_VARCHAR})*(?::[1-9][0-9]{{0,3}}|\\*)?"
_URI_TEMPLATE = f"(?:[{_LITERAL_CHARS}]|%[0-9a-fA-F]{{2}}|\\{{[+#./;?&]?{_VARSPEC}(?:,{_VARSPEC})*\\}})*"
_JSON_POINTER = "(?:/(?:[^/~]|~[01])*)*"


def _regex(value: str) -> bool:
    """An ECMA-262 regular expression: ECMA syntax Python lacks is rewritten, Python-only syntax refused."""
    if re.search(r"\(\?P|\(\?#|\(\?[a-zA-Z]+[):]|\\[aAzZG]|\\[ehHvVNR]|\\[0-9]{2,}", value):
        if re.search(r"\\\\", value) is None:
            return False
    python = value
    python = re.sub(r"\(\?<([A-Za-z_$][A-Za-z0-9_$]*)>", r"(?P<\1>", python)
    python = re.sub(r"\\k<([A-Za-z_$][A-Za-z0-9_$]*)>", r"(?P=\1)", python)
    python = re.sub(r"\\c[A-Za-z]", "x", python)
    python = re.sub(r"\\u\{[0-9a-fA-F]+\}", "x", python)
    python = re.sub(r"\\[pP]\{[A-Za-z_=]+\}", "x", python)
    python = python.replace("[^]", "[\\s\\S]").replace("[]", "(?!)")
    python = re.sub(r"\(\?<([=!])", r"(?\1", python)  # lookbehind of any width: checked as lookahead
    try:
        re.compile(python)
    except (re.error, OverflowError, RecursionError):
        return False
    return True


CHECKS: dict[str, Callable[[str], bool]] = {
    "date": _full(DATE),
    "date-time": _date_time,
    "time": _time,
    "duration": _full(_DURATION),
    "uuid": _full(UUID),
    "email": lambda v: _mailbox(v, _LOCAL_RX, _hostname),
    "idn-email": lambda v: _mailbox(v, _IDN_LOCAL_RX, _idn_hostname),
    "hostname": _hostname,
    "idn-hostname": _idn_hostname,
    "ipv4": _full(IPV4),
    "ipv6": _ipv6,
    "uri": _uri,
    "uri-reference": _uri_reference,
    "iri": _iri,
    "iri-reference": _iri_reference,
    "uri-template": _full(_URI_TEMPLATE),
    "json-pointer": _full(_JSON_POINTER),
    "relative-json-pointer": _full(f"(?:0|[1-9][0-9]*)(?:#|{_JSON_POINTER})"),
    "regex": _regex,
}
"""Every format drafts 4 through 2020-12 define -> its exact check (over the decoded string)."""


CHECKED_MAX_LENGTH: dict[str, int] = {"hostname": 253, "email": 64 + 1 + 253}
"""Formats whose grammar regex is unbounded but whose check is not: no longer string passes the check
(a host name has at most 253 characters; a mailbox a local part of at most 64 octets, "@" and a
domain of at most 253 characters, or a shorter address literal). A ``maxLength`` at or above this adds
nothing to the format: the longer strings the regex admits are the ones the check already refuses."""

GRAMMAR_PATTERNS: dict[str, str] = {
    "ipv6": IPV6,  # the check also asks ipaddress, which accepts every string of this regex
    "duration": _DURATION,
    "uri-template": _URI_TEMPLATE.replace("\\U00010000", "\\u{10000}").replace("\\U0010fffd", "\\u{10fffd}"),
    "json-pointer": _JSON_POINTER,
    "relative-json-pointer": f"(?:0|[1-9][0-9]*)(?:#|{_JSON_POINTER})",
}
"""Formats whose check is exactly a regex, as ECMA-262 patterns over the decoded string (read by the
compiler's pattern translator, which writes the escapes JSON requires): the grammar states them too."""


EXACT_PATTERNS: dict[str, str] = {
    **{name: FORMATS[name] for name in ("date", "uuid", "ipv4")},
    **GRAMMAR_PATTERNS,
}
"""Formats whose check accepts exactly the strings of this pattern (over the decoded string), so the
complement of the pattern is exactly the strings that fail the check (``not: {format: ...}``)."""


def checker(name: str) -> Callable[[object], bool]:
    """The validator's check for a format: non-strings pass (``format`` only constrains strings)."""
    check = CHECKS[name]

    def run(instance: object) -> bool:
        return not isinstance(instance, str) or check(instance)

    return run


STANDARD_FORMATS = frozenset(
    """date-time date time duration email idn-email hostname idn-hostname ipv4 ipv6 uri uri-reference iri
    iri-reference uuid uri-template json-pointer relative-json-pointer regex""".split()
)
"""Formats JSON Schema defines; any other ``format`` value is an annotation only."""


@functools.lru_cache(maxsize=1)
def format_checker() -> jsonschema.FormatChecker:
    """jsonschema's format checks plus ours for the formats the grammar compiles (the same regexes)."""
    jsonschema_checker = jsonschema.FormatChecker(formats=())
    for name in CHECKS:  # ours replace jsonschema's (draft 3's "time", say) so both sides agree
        jsonschema_checker.checks(name)(checker(name))
    return jsonschema_checker


@functools.lru_cache(maxsize=1)
def asserted_formats() -> frozenset[str]:
    """Formats the validator asserts; any other ``format`` value is an annotation only."""
    return frozenset(format_checker().checkers)
