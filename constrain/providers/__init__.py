"""Model providers: each sends a grammar as a CFG constraint and returns the raw text it got back.

Providers never validate; the generate loop does (see ``constrain.generate``).
"""

from .base import Completion, Constraint, Message, Provider, Usage

__all__ = ["Completion", "Constraint", "Message", "Provider", "Usage"]
