"""The engines a grammar runs on: lark-python and llguidance adapters, and the Lark -> GBNF conversion.

May import: ``constrain._regex``, ``constrain.errors``.
"""
