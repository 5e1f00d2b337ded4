"""Thin adapters over the parsing engines: lark-python and llguidance."""
