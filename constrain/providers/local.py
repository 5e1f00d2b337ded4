"""``Local``, the embedded model as a provider: it lives in ``constrain.local``; this is the import path
the registry (``get("local")``) and users have always used."""

from ..local import Local, LocalBackend

__all__ = ["Local", "LocalBackend"]
