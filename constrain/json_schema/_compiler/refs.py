"""``$ref``: local references (JSON pointers, ``$anchor`` / ``$dynamicAnchor`` names) resolved in the
root schema. A reference met again while it is being compiled becomes a rule of its own (recursion)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from ...errors import JSONSchemaError
from .context import Alts, CompilerContext, pointer_join


NOWHERE = object()


def at_pointer(root: Any, ptr: str) -> Any:
    """The value at JSON pointer ``ptr`` (``/$defs/a~1b/0``) in ``root``, or ``NOWHERE``."""
    node = root
    for raw in ptr.split("/")[1:] if ptr else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return NOWHERE
    return node


class References(CompilerContext):
    """``$ref``: resolving a reference, and compiling its target once (a rule of its own if recursive)."""

    def resolve(self, ref: Any, ptr: str) -> tuple[Any, str]:
        if not isinstance(ref, str):
            raise JSONSchemaError("$ref must be a string", keyword="$ref", pointer="#" + ptr)
        base, _, fragment = ref.partition("#")
        if base not in self.root_ids:
            raise JSONSchemaError(f"only local references are supported, not {ref!r}", keyword="$ref", pointer="#" + ptr)
        fragment = unquote(fragment)
        if fragment and not fragment.startswith("/"):
            target = self._anchor(fragment)
            if target is None:
                raise JSONSchemaError(f"unknown anchor in {ref!r}", keyword="$ref", pointer="#" + ptr)
            return target
        node = at_pointer(self.root, fragment)
        if node is NOWHERE:
            raise JSONSchemaError(f"$ref {ref!r} points nowhere", keyword="$ref", pointer="#" + ptr)
        return node, fragment

    def _anchor(self, name: str) -> tuple[Any, str] | None:
        if self.anchors is None:
            self.anchors = {}
            stack: list[tuple[Any, str]] = [(self.root, "")]
            while stack:
                node, p = stack.pop()
                if isinstance(node, dict):
                    for key in ("$anchor", "$dynamicAnchor"):
                        if isinstance(node.get(key), str):
                            self.anchors.setdefault(node[key], (node, p))
                    for k, v in node.items():
                        if k not in ("enum", "const", "default", "examples"):
                            stack.append((v, pointer_join(p, k)))
                elif isinstance(node, list):
                    stack.extend((v, pointer_join(p, i)) for i, v in enumerate(node))
        return self.anchors.get(name)

    def ref_value(self, ref: Any, ptr: str, depth: int) -> Alts:
        target, tptr = self.resolve(ref, ptr)
        if tptr in self.ref_alts:
            return self.ref_alts[tptr]
        name = "r_" + re.sub(r"[^a-z0-9_]", "_", tptr.lower())[-40:].strip("_") + f"_{len(self.rules)}"
        if tptr in self.ref_in_progress:
            self.ref_rule_needed.add(tptr)
            placeholder = self.ref_names.setdefault(tptr, name)
            return Alts(rules=[placeholder], opaque=1)
        self.ref_in_progress.add(tptr)
        try:
            alts = self.value(target, tptr, depth + 1)
        finally:
            self.ref_in_progress.discard(tptr)
        if tptr in self.ref_rule_needed:
            rule_name = self.ref_names[tptr]
            if alts.rules == [rule_name] and alts.count() == 1:
                alts = Alts()  # a reference that only ever leads back to itself
            if alts.empty():
                raise JSONSchemaError("recursive reference admits no value", keyword="$ref", pointer="#" + tptr)
            self.rule(self.expr(alts), name=rule_name)
            alts = Alts(rules=[rule_name], opaque=1)
        self.ref_alts[tptr] = alts
        return alts
