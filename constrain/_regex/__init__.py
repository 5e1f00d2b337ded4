"""One regular-expression AST, shared by the Lark -> GBNF conversion and the JSON Schema ``pattern``
translation.

* ``charsets``: character sets as sorted, disjoint code-point intervals, and their algebra.
* ``nodes``: the AST (``CharNode``, ``SeqNode``, ``AltNode``, ``RepNode``, ``AnchorNode``) and
  ``PatternError``.
* ``ecma``: the ECMA-262 parser (JSON Schema ``pattern``s).
* ``python_re``: Python ``re`` syntax (lark terminals) read through Python's own regex parser, so a
  class, flag or escape means exactly what it means to lark.

The two flavours differ in what their syntax means (``\\d``, ``.``, ``[]``, case folding, anchors), not
in the tree they produce: both yield the nodes of ``nodes``.
"""
