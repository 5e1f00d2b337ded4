"""The grammar playground: write a grammar and a test input, see every engine's verdict as you type.

``constrain playground`` serves one page on 127.0.0.1 and a small JSON API behind it (``POST
/api/check``, ``/api/explain``, ``/api/sample``, ``/api/compile-schema``), each a thin layer over the
public functions (``Grammar.check``, ``constrain.grammar.explain.explain``, ``Grammar.sample``,
``constrain.json_schema.grammar``, ``constrain.sql.grammar``). The page's script and style ship in
the package: nothing is fetched from the internet. A request may carry a ``version`` (the page counts the
edits each panel judges); its answer carries it back, and the page draws only the answer for the newest.

May import: ``constrain.sql``, ``constrain.generate``, ``constrain.providers``, ``constrain.json_schema``,
``constrain.grammar``, ``constrain.errors``.
"""

from __future__ import annotations

from ._api import LIMITS
from ._server import CALL_SECONDS, CHECK_SECONDS, MAX_BODY_BYTES, Playground

__all__ = ["CALL_SECONDS", "CHECK_SECONDS", "LIMITS", "MAX_BODY_BYTES", "Playground"]
