"""An OpenAI-compatible HTTP server that enforces the submitted grammar with llguidance.

Speaks ``POST /v1/responses`` (custom tools with Lark or regex grammars, optional SSE streaming) and
``POST /v1/chat/completions`` (the nested custom-tool shape, vLLM's ``structured_outputs.grammar``,
llama.cpp's ``grammar`` and SGLang's ``ebnf`` GBNF fields; ``stream: true`` sends ``chat.completion.chunk``
events, with a usage chunk when ``stream_options.include_usage`` asks). A grammar llguidance refuses gets the
400 error body a real server sends. Outputs come from a pluggable ``Backend``: ``RandomWalkBackend``
walks the grammar at random (for tests and benchmarks); the embedded local model plugs in the same way.
The Files and Batches endpoints of OpenAI's Batch API run each line through ``/v1/responses``.
Run it with ``constrain serve`` or ``python -m constrain.server``; it listens on 127.0.0.1 only.

Inside, from the bottom up: ``_http`` (requests, errors, responses; no endpoint), ``_backends`` (where
outputs come from), ``_batch`` (Files and Batches; knows ``_http`` and a function that answers one line),
``_server`` (the routes). The package may import ``constrain.grammar``, ``constrain.engines``,
``constrain.errors`` and ``constrain.providers.base``; nothing in the library imports it but the CLI,
which also plugs the embedded model in (``constrain.local.LocalBackend``).
"""

from ._backends import Backend, GenerationRequest, RandomWalkBackend
from ._http import HTTPError, Request, Responder
from ._server import Server, ServerThread, main

__all__ = [
    "Backend",
    "GenerationRequest",
    "HTTPError",
    "RandomWalkBackend",
    "Request",
    "Responder",
    "Server",
    "ServerThread",
    "main",
]
