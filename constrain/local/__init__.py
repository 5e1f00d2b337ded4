"""The embedded model: a GGUF model decoded on the CPU under the grammar, with no network and no key.

From the bottom up: ``_store`` (the registry of models and their reassembly from PyPI chunk packages,
verified by sha256), ``_repetition`` (the guard that stops an output looping), ``_prefix_cache`` (the KV
state of prompts' shared prefixes, in memory and on disk), ``_sequence`` (one continuation: the token it
picks under the grammar's mask), ``_model`` (a loaded model and its decode loops), ``_provider`` (``Local``,
the provider, and ``LocalBackend``, the same model behind ``constrain.server``).

The package may import ``constrain.errors``, ``constrain.grammar``, ``constrain.engines`` and
``constrain.providers.base`` (never the server it can answer for); llama-cpp-python, the optional
``[local]`` extra, only when a model is loaded. ``Local`` is also importable as
``constrain.providers.local.Local``.
"""

from ._model import DEFAULT_CONTEXT, DEFAULT_THREADS, MAX_SEQUENCES, LocalModel, load_model
from ._provider import Local, LocalBackend
from ._sequence import DecodeResult
from ._store import DEFAULT_MODEL, MODELS, ModelSpec, cache_dir, resolve_model

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_MODEL",
    "DEFAULT_THREADS",
    "DecodeResult",
    "Local",
    "LocalBackend",
    "LocalModel",
    "MAX_SEQUENCES",
    "MODELS",
    "ModelSpec",
    "cache_dir",
    "load_model",
    "resolve_model",
]
