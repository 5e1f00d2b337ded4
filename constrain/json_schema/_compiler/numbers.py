"""``minimum`` / ``maximum`` and their exclusive forms, ``multipleOf``, integers, and a number that
must not be an integer: regexes written with the range regexes of ``_numbers`` (bounded numbers have
no exponent)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from ...errors import JSONSchemaError
from .. import _automaton, _numbers, _regex
from .context import CompilerContext, pointer_join


_NON_INTEGER = (
    "-?(?:" + "|".join(f"[1-9][0-9]{{{a}}}\\.[0-9]{{0,{13 - a}}}[1-9]0*" for a in range(14))
    + "|0\\.0{0,20}[0-9]{0,14}[1-9]0*)"
)
"""A number that is not an integer: a fraction with a non-zero digit, no exponent, at most 15
significant digits and 20 zeros after the point. The validator reads numbers as floats, and a float
of up to 15 significant digits (DBL_DIG) keeps them, so no such number rounds to an integer."""
_NON_INTEGER_BOUNDED = "-?(?:0|[1-9][0-9]{0,5})\\.[0-9]{0,8}[1-9]0*"
"""The same within bounds (an automaton intersects it with the range): at most 6 digits before the
point and 9 after the last non-zero one, which a float keeps apart from every integer."""


class NumberKeywords(CompilerContext):
    """The regex of the numbers a schema admits."""

    def number(self, schema: dict[str, Any], *, integer: bool, ptr: str) -> str | None:
        if schema.get("__not_integer__"):
            return None if integer else self._non_integer(self.number({k: v for k, v in schema.items() if k != "__not_integer__"}, integer=False, ptr=ptr), ptr)
        lo, lo_incl, hi, hi_incl = _bounds(schema, ptr)
        multiple = schema.get("multipleOf")
        if multiple is not None:
            rx = self._multiple_of(multiple, lo, lo_incl, hi, hi_incl, integer, ptr)
            if rx is not False:
                return rx  # type: ignore[return-value]
        if integer:
            ilo = None if lo is None else (math.ceil(lo) if lo_incl or lo != lo.to_integral_value() else int(lo) + 1)
            ihi = None if hi is None else (math.floor(hi) if hi_incl or hi != hi.to_integral_value() else int(hi) - 1)
            if ilo is not None and lo is not None and not lo_incl and Decimal(ilo) <= lo:
                ilo += 1
            if ihi is not None and hi is not None and not hi_incl and Decimal(ihi) >= hi:
                ihi -= 1
            rx = _numbers.int_range(ilo, ihi)
            return None if rx is None else f"{rx}(?:\\.0+)?"  # 5.0 is an integer too
        if lo is None and hi is None:
            return _numbers.NUMBER_ANY
        return _numbers.decimal_range(lo, lo_incl, hi, hi_incl)

    def _non_integer(self, rx: str | None, ptr: str) -> str | None:
        """The numbers of ``rx`` that are not integers, written with a fraction that has a non-zero
        digit and no exponent (the spelling of bounded numbers)."""
        if rx is None:
            return None
        if rx == _numbers.NUMBER_ANY:
            return _NON_INTEGER
        try:
            dfa = _automaton.intersect(_automaton.from_node(_regex.parse(rx)), _automaton.from_node(_regex.parse(_NON_INTEGER_BOUNDED)))
            return _automaton.to_regex(dfa)
        except (_automaton.TooLarge, _regex.PatternError):
            self.refuse("a number that is not an integer, within these bounds, cannot be expressed", "not", pointer_join(ptr, "not"))
            return rx

    def _multiple_of(
        self, multiple: Any, lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool, integer: bool, ptr: str
    ) -> str | None | bool:
        mptr = pointer_join(ptr, "multipleOf")
        try:
            step = Decimal(str(multiple))
        except InvalidOperation:
            raise JSONSchemaError("multipleOf must be a number", keyword="multipleOf", pointer="#" + mptr) from None
        if step <= 0:
            raise JSONSchemaError("multipleOf must be positive", keyword="multipleOf", pointer="#" + mptr)
        if step == step.to_integral_value() and step == 1 and integer:
            return False
        if step == step.to_integral_value() and lo is not None and hi is not None:
            first = math.ceil(lo / step) * step
            values = []
            v = first
            while v <= hi and len(values) <= 1000:
                if (v > lo or lo_incl) and (v < hi or hi_incl):
                    values.append(int(v))
                v += step
            if len(values) <= 1000:
                alts = sorted({number_literal(x) for x in values}, key=lambda text: (-len(text), text))
                return "(?:" + "|".join(alts) + ")" if alts else None
        self.refuse("multipleOf can only be expressed for small integer ranges", "multipleOf", mptr)
        return False


def number_literal(v: int | float) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        raise JSONSchemaError("enum contains a non-finite number", keyword="enum")
    if isinstance(v, bool):
        raise AssertionError
    d = Decimal(str(v)) if isinstance(v, float) else Decimal(v)
    if d == d.to_integral_value():
        text = str(int(d))
        rx = text.replace("-", "\\x2d") + "(?:\\.0+)?"
        return rx
    text = format(d.normalize(), "f")
    return text.replace("-", "\\x2d").replace(".", "\\.") + "0*"


def _bounds(schema: dict[str, Any], ptr: str) -> tuple[Decimal | None, bool, Decimal | None, bool]:
    def num(key: str) -> Decimal | None:
        v = schema.get(key)
        if v is None or isinstance(v, bool):
            return None
        if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise JSONSchemaError(f"{key} must be a number", keyword=key, pointer="#" + pointer_join(ptr, key))
        return Decimal(str(v)) if isinstance(v, float) else Decimal(v)

    lo, lo_incl = num("minimum"), True
    elo = num("exclusiveMinimum")
    if elo is not None and (lo is None or elo >= lo):
        lo, lo_incl = elo, False
    hi, hi_incl = num("maximum"), True
    ehi = num("exclusiveMaximum")
    if ehi is not None and (hi is None or ehi <= hi):
        hi, hi_incl = ehi, False
    return lo, lo_incl, hi, hi_incl
