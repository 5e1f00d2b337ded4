"""An object's members written as grammar rules: declared ones in declared order, each optional one
may be left out, additional members between them (or before them all when their key regex is large);
with a count of members kept in the rules (``minProperties`` / ``maxProperties``); or, in widen
mode, in any order."""

from __future__ import annotations

from dataclasses import dataclass

from .context import CompilerContext


@dataclass
class Member:
    """One member of an object: its key and value expressions, or the whole ``key : value`` pair."""

    key: str  # lark expression for the key token
    value: str  # lark expression for the value
    required: bool
    pair: str = ""  # the whole member when it is not one key and one value (several key sets)
    leading: bool = False  # additional members come before the declared ones (a large key regex)

    def expr(self, colon: str) -> str:
        return self.pair or f"{self.key} {colon} {self.value}"


class ObjectRules(CompilerContext):
    """Rules for an object's members, once ``objects`` has said which members there are."""

    def object_rule(self, members: list[Member], extra: Member | None, nonempty: bool = False) -> str | None:
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        if extra is not None and extra.leading:
            # additional members first, then the declared ones: the large key regex then appears in two
            # lexer states only (after "{" and after an additional member's comma), not after every member
            declared, nullable = self._member_sequence(members, None)
            extra_pair = extra.expr(colon)
            name = f"o{len(self.rules)}_x"
            if declared is None:
                nullable = True
                self.rule(f"{extra_pair} ({comma} {name})?", name=name)
            elif nullable:
                self.rule(f"{extra_pair} ({comma} {name})? | {declared}", name=name)
            else:
                self.rule(f"{extra_pair} {comma} {name} | {declared}", name=name)
            return self.rule(f"{lb} {name}? {rb}" if nullable and not nonempty else f"{lb} {name} {rb}", "o")
        if extra is None and all(m.required for m in members):
            if nonempty and not members:
                return None
            inner = f" {comma} ".join(m.expr(colon) for m in members)
            return self.rule(f"{lb} {inner} {rb}" if inner else f"{lb} {rb}", "o")
        first, nullable = self._member_sequence(members, extra)
        if first is None:
            return None if nonempty else self.rule(f"{lb} {rb}", "o")
        body = f"{lb} {first}? {rb}" if nullable and not nonempty else f"{lb} {first} {rb}"
        return self.rule(body, name=first[: -len("_first")])

    def counted_object_rule(self, members: list[Member], extra: Member | None, low: int, high: int | None) -> str | None | bool:
        """An object whose number of members is at least ``low`` and at most ``high`` (None: no bound):
        the member chain of ``_member_sequence`` with the count so far in each rule (saturating at
        ``low`` when there is no upper bound). False: too many rules."""
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        n = len(members)
        top = high if high is not None else low
        if (n + 1) * (top + 1) > 1200:
            return False
        base = f"o{len(self.rules)}"
        pair = [m.expr(colon) for m in members]
        extra_pair = extra.expr(colon) if extra else ""
        optional_from = [True] * (n + 1)
        for i in range(n - 1, -1, -1):
            optional_from[i] = optional_from[i + 1] and not members[i].required

        def inc(j: int) -> int | None:
            if high is not None:
                return j + 1 if j < high else None
            return min(j + 1, low)

        # b[i][j]: after a member, j members so far, the next declared one at i or later;
        # c[i][j]: the same, but the next member is a declared one. Each is (rule or None, may be empty).
        c: dict[tuple[int, int], tuple[str | None, bool]] = {}
        b: dict[tuple[int, int], tuple[str | None, bool]] = {}

        def ref(entry: tuple[str | None, bool]) -> str | None:
            name, empty = entry
            if name is None:
                return "" if empty else None
            return f"{name}?" if empty else name

        for i in range(n, -1, -1):
            for j in range(top, -1, -1):
                alts: list[str] = []
                empty = False
                if i < n:
                    nj = inc(j)
                    if nj is not None:
                        after = ref(b[i + 1, nj])
                        if after is not None:
                            alts.append(f"{comma} {pair[i]} {after}".strip())
                    if not members[i].required:
                        name, e = c[i + 1, j]
                        if name is not None:
                            alts.append(name)
                        empty = empty or e
                else:
                    empty = j >= low
                c[i, j] = (self.rule(" | ".join(alts), name=f"{base}_c{i}_{j}") if alts else None, empty)
                alts = []
                if extra is not None:
                    nj = inc(j)
                    if nj is not None:
                        if nj != j:
                            after = ref(b[i, nj])
                        elif c[i, j] == (None, False):
                            after = None  # saturated, and nothing could follow: no way to finish
                        else:  # saturated: the same rule again
                            after = f"{base}_b{i}_{j}?" if c[i, j][1] else f"{base}_b{i}_{j}"
                        if after is not None:
                            alts.append(f"{comma} {extra_pair} {after}".strip())
                name, e = c[i, j]
                if name is not None:
                    alts.append(name)
                b[i, j] = (self.rule(" | ".join(alts), name=f"{base}_b{i}_{j}") if alts else None, e)
        # the first member: as after a member, without the leading comma
        first: list[str] = []
        if extra is not None:
            nj = inc(0)
            if nj is not None:
                after = ref(b[0, nj])
                if after is not None:
                    first.append(f"{extra_pair} {after}".strip())
        for i in range(n):
            nj = inc(0)
            if nj is not None:
                after = ref(b[i + 1, nj])
                if after is not None:
                    first.append(f"{pair[i]} {after}".strip())
            if members[i].required:
                break
        may_be_empty = optional_from[0] and low == 0
        if not first:
            return self.rule(f"{lb} {rb}", "o") if may_be_empty else None
        rule = self.rule(" | ".join(first), name=f"{base}_first")
        return self.rule(f"{lb} {rule}? {rb}" if may_be_empty else f"{lb} {rule} {rb}", name=base)

    def _member_sequence(self, members: list[Member], extra: Member | None) -> tuple[str | None, bool]:
        """A rule for the members between the braces, at least one present (None if none can be), and
        whether all of them may be left out."""
        comma, colon = self.punct(","), self.punct(":")
        n = len(members)
        base = f"o{len(self.rules)}"
        pair = [f"{m.key} {colon} {m.value}" for m in members]
        extra_pair = extra.expr(colon) if extra else ""
        optional_from = [True] * (n + 1)  # optional_from[i]: members i.. are all optional
        for i in range(n - 1, -1, -1):
            optional_from[i] = optional_from[i + 1] and not members[i].required

        def ref(name: str | None, nullable: bool) -> str:
            if name is None:
                return ""
            return f"{name}?" if nullable else name

        # c[i]: after some member, the next declared member present is i or later (no extras here)
        c: list[str | None] = [None] * (n + 1)
        b: list[str | None] = [None] * (n + 1)
        for i in range(n, -1, -1):
            if i < n:
                alts = [f"{comma} {pair[i]} {ref(b[i + 1], optional_from[i + 1])}".strip()]
                if not members[i].required and c[i + 1] is not None:
                    alts.append(c[i + 1])  # type: ignore[arg-type]
                c[i] = self.rule(" | ".join(alts), name=f"{base}_c{i}")
            b_alts = []
            if extra is not None:
                b_alts.append(f"{comma} {extra_pair} {base}_b{i}?" if optional_from[i] else f"{comma} {extra_pair} {base}_b{i}")
            if c[i] is not None:
                b_alts.append(c[i])  # type: ignore[arg-type]
            if b_alts:
                b[i] = self.rule(" | ".join(b_alts), name=f"{base}_b{i}")
        # first member: the same, without the leading comma
        first_alts: list[str] = []
        if extra is not None:
            first_alts.append(f"{extra_pair} {ref(b[0], optional_from[0])}".strip())
        for i in range(n):
            first_alts.append(f"{pair[i]} {ref(b[i + 1], optional_from[i + 1])}".strip())
            if members[i].required:
                break
        if not first_alts:
            return None, True
        return self.rule(" | ".join(first_alts), name=f"{base}_first"), optional_from[0]

    def any_order_rule(self, members: list[Member], extra: Member | None, nonempty: bool = False) -> str | None:
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        pairs = [m.expr(colon) for m in members + ([extra] if extra else [])]
        pair = self.rule(" | ".join(pairs), "p")  # called for two or more members
        return self.rule(f"{lb} {pair} ({comma} {pair})* {rb}" if nonempty else f"{lb} ({pair} ({comma} {pair})*)? {rb}", "o")

    def pairs_member(self, pairs: list[str]) -> Member | None:
        """One member that is any of ``pairs`` (``key : value`` expressions), or None when there are none."""
        if not pairs:
            return None
        if len(pairs) == 1:
            return Member("", "", False, pair=pairs[0])
        return Member("", "", False, pair=self.rule(" | ".join(pairs), "m"))
