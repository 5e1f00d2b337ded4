"""Numeric bounds as regexes over JSON number text.

Integers: canonical JSON integers (no leading zeros) within ``[lo, hi]``. Decimals: ``-?INT(.FRAC)?``
within bounds, compared digit by digit; numbers with bounds are written without an exponent (a
documented narrowing: such a grammar never produces ``1e2``, and never accepts it).

Alternatives are ordered longest integer part first, because lark matches a terminal with Python's
leftmost-first ``re``: a shorter alternative listed first would end the token early.
"""

from __future__ import annotations

from decimal import Decimal

INT_ANY = "-?(?:0|[1-9][0-9]*)"
NUMBER_ANY = "-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"


def _digit_class(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    if (lo, hi) == (0, 9):
        return "[0-9]"
    return f"[{lo}-{hi}]"


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives for digit strings of one length between ``low`` and ``high`` (inclusive)."""
    n = len(low)
    if low == high:
        return [low]
    if n == 1:
        return [_digit_class(int(low), int(high))]
    if low[1:] == "0" * (n - 1) and high[1:] == "9" * (n - 1):
        return [_digit_class(int(low[0]), int(high[0])) + ("[0-9]" if n == 2 else f"[0-9]{{{n - 1}}}")]
    if low[0] == high[0]:
        return [low[0] + _alt(_same_length(low[1:], high[1:]))]
    out = [low[0] + _alt(_same_length(low[1:], "9" * (n - 1)))]
    lo_d, hi_d = int(low[0]), int(high[0])
    if hi_d - lo_d > 1:
        out.append(_digit_class(lo_d + 1, hi_d - 1) + ("[0-9]" if n == 2 else f"[0-9]{{{n - 1}}}"))
    out.append(high[0] + _alt(_same_length("0" * (n - 1), high[1:])))
    return out


def _alt(options: list[str]) -> str:
    return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"


def nonneg_int_alternatives(lo: int, hi: int | None) -> list[tuple[int, str]]:
    """(digit count, regex) pairs covering canonical integers in ``[lo, hi]`` (``lo >= 0``), longest first."""
    if hi is not None and hi < lo:
        return []
    lo_len = len(str(lo))
    if hi is None:
        return [(lo_len + 1, f"[1-9][0-9]{{{lo_len},}}"), (lo_len, _alt(_same_length(str(lo), str(10**lo_len - 1))))]
    hi_len = len(str(hi))
    if lo_len == hi_len:
        return [(lo_len, _alt(_same_length(str(lo), str(hi))))]
    out = [(hi_len, _alt(_same_length(str(10 ** (hi_len - 1)), str(hi))))]
    if hi_len - lo_len >= 2:
        a, b = lo_len + 1, hi_len - 1
        counted = f"[0-9]{{{a - 1}}}" if a == b else f"[0-9]{{{a - 1},{b - 1}}}"
        out.append((b, "[1-9]" + counted))
    out.append((lo_len, _alt(_same_length(str(lo), str(10**lo_len - 1)))))
    return out


def int_range(lo: int | None, hi: int | None) -> str | None:
    """Regex for canonical JSON integers in ``[lo, hi]`` (None: unbounded); None if the range is empty."""
    if lo is not None and hi is not None and lo > hi:
        return None
    parts: list[str] = []
    if lo is None or lo < 0:
        neg_hi = None if lo is None else -lo
        neg_lo = 1 if hi is None or hi >= 0 else -hi
        alts = nonneg_int_alternatives(neg_lo, neg_hi)
        if alts:
            parts.append("-" + _alt([rx for _, rx in alts]))
    if hi is None or hi >= 0:
        alts = nonneg_int_alternatives(max(lo or 0, 0), hi)
        if alts:
            parts.append(_alt([rx for _, rx in alts]))
    if not parts:
        return None
    return _alt(parts)


# -- decimals -----------------------------------------------------------------------------------------------
def _split(value: Decimal) -> tuple[int, str]:
    """Integer part and normalized fraction digits of a non-negative decimal."""
    text = format(value, "f")
    whole, _, frac = text.partition(".")
    return int(whole), frac.rstrip("0")


def _frac(lo: str | None, lo_incl: bool, hi: str | None, hi_incl: bool) -> tuple[bool, str | None]:
    """Digit strings D with ``0.D`` between ``0.lo`` and ``0.hi`` (None: unbounded side).

    Returns (empty string allowed, regex for the non-empty strings or None).
    """
    if lo == "" and lo_incl:
        lo = None  # 0.D >= 0 always holds
    if hi == "":
        ok = hi_incl and lo is None
        return ok, ("0+" if ok else None)
    if lo is None and hi is None:
        return True, "[0-9]+"
    if lo == "" and hi is None:
        return False, "0*[1-9][0-9]*"
    empty_ok = lo is None
    a0, a_rest = (0, None) if lo is None else ((int(lo[0]), lo[1:].rstrip("0")) if lo else (0, ""))
    b0, b_rest = (9, None) if hi is None else ((int(hi[0]), hi[1:].rstrip("0")) if hi else (0, ""))
    alts: list[str] = []
    if b0 - a0 > 1:
        alts.append(_digit_class(a0 + 1, b0 - 1) + "[0-9]*")
    if a0 < b0:
        alts.append(_join(str(a0), _frac(a_rest, lo_incl, None, True)))
        alts.append(_join(str(b0), _frac(None, True, b_rest, hi_incl)))
    elif a0 == b0:
        alts.append(_join(str(a0), _frac(a_rest, lo_incl, b_rest, hi_incl)))
    alts = [a for a in alts if a]
    return empty_ok, (_alt(alts) if alts else None)


def _join(head: str, tail: tuple[bool, str | None]) -> str:
    empty_ok, rx = tail
    if rx is None:
        return head if empty_ok else ""
    return head + (f"(?:{rx})?" if empty_ok else (rx if rx.startswith("(?:") or len(rx) <= 5 else f"(?:{rx})"))


def _fraction_suffix(tail: tuple[bool, str | None]) -> str | None:
    empty_ok, rx = tail
    if rx is None:
        return "" if empty_ok else None
    return f"(?:\\.{rx})?" if empty_ok else f"\\.{rx}"


def _nonneg_decimal(lo: Decimal, lo_incl: bool, hi: Decimal | None, hi_incl: bool) -> list[tuple[int, str]]:
    """(integer digit count, regex) for non-negative decimal texts with value in the bounds."""
    a_int, a_frac = _split(lo)
    out: list[tuple[int, str]] = []
    if hi is None:
        middle = nonneg_int_alternatives(a_int + 1, None)
        out += [(n, rx + "(?:\\.[0-9]+)?") for n, rx in middle]
        suffix = _fraction_suffix(_frac(a_frac, lo_incl, None, True))
        if suffix is not None:
            out.append((len(str(a_int)), str(a_int) + suffix))
    else:
        b_int, b_frac = _split(hi)
        if a_int == b_int:
            suffix = _fraction_suffix(_frac(a_frac, lo_incl, b_frac, hi_incl))
            if suffix is not None:
                out.append((len(str(a_int)), str(a_int) + suffix))
        elif a_int < b_int:
            out += [(n, rx + "(?:\\.[0-9]+)?") for n, rx in nonneg_int_alternatives(a_int + 1, b_int - 1)]
            low_suffix = _fraction_suffix(_frac(a_frac, lo_incl, None, True))
            if low_suffix is not None:
                out.append((len(str(a_int)), str(a_int) + low_suffix))
            high_suffix = _fraction_suffix(_frac(None, True, b_frac, hi_incl))
            if high_suffix is not None:
                out.append((len(str(b_int)), str(b_int) + high_suffix))
    out.sort(key=lambda p: -p[0])
    return out


def decimal_range(
    lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool
) -> str | None:
    """Regex for JSON numbers without exponent whose value lies in the bounds; None if none does."""
    parts: list[str] = []
    zero = Decimal(0)
    # "-X" stands for -x: x ranges over [max(0, -hi), -lo]
    if lo is None or lo < zero or (lo == zero and lo_incl):
        if hi is None or hi > zero:
            x_lo, x_lo_incl = zero, True
        else:
            x_lo, x_lo_incl = -hi, hi_incl
        x_hi, x_hi_incl = (None, True) if lo is None else (-lo, lo_incl)
        if x_hi is None or x_lo < x_hi or (x_lo == x_hi and x_lo_incl and x_hi_incl):
            alts = _nonneg_decimal(x_lo, x_lo_incl, x_hi, x_hi_incl)
            if alts:
                parts.append("-" + _alt([rx for _, rx in alts]))
    if hi is None or hi > zero or (hi == zero and hi_incl):
        p_lo, p_lo_incl = (zero, True) if lo is None or lo < zero else (lo, lo_incl)
        if hi is None or p_lo < hi or (p_lo == hi and p_lo_incl and hi_incl):
            alts = _nonneg_decimal(p_lo, p_lo_incl, hi, hi_incl)
            if alts:
                parts.append(_alt([rx for _, rx in alts]))
    if not parts:
        return None
    return _alt(parts)
