"""``constrain serve``: the grammar-enforcing OpenAI-compatible server, answering with the local model."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from ..local import DEFAULT_CONTEXT, DEFAULT_MODEL, DEFAULT_THREADS, MODELS
from ._output import Output, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="serve the local model as an OpenAI-compatible Responses/Chat endpoint on 127.0.0.1",
        description="Serve POST /v1/responses (custom tools with Lark or regex grammars, SSE streaming) and "
        "/v1/chat/completions on 127.0.0.1. Every output is decoded under the request's grammar by the "
        "embedded model. Point the OpenAI provider (or any OpenAI client) at the printed base URL.",
    )
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0 = a free one; default 8080)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"a model name ({', '.join(sorted(MODELS))}) or the path of a GGUF file (default {DEFAULT_MODEL})",
    )
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help="CPU threads for decoding (default 0: one or every core, whichever measures faster)")
    p.add_argument("--n-ctx", type=int, default=DEFAULT_CONTEXT, help="context length in tokens")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (with --temperature > 0)")
    p.add_argument("--max-tokens", type=int, default=512, help="token limit when a request sets none")
    p.add_argument(
        "--backend",
        choices=("local", "random-walk"),
        default="local",
        help="where outputs come from: the local model (default) or random walks over the grammar (no model)",
    )
    p.add_argument("--api-key-env", metavar="VAR", help="require the key held in environment variable VAR")
    add_json_flag(p)
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    import os

    from ..server import RandomWalkBackend, Server

    if args.backend == "local":
        from ..local import Local, LocalBackend

        provider = Local(
            args.model,
            temperature=args.temperature,
            seed=args.seed,
            max_tokens=args.max_tokens,
            n_ctx=args.n_ctx,
            threads=args.threads,
        )
        model = provider.load()  # assemble, verify and load before accepting requests
        backend = LocalBackend(provider)
        out.line(f"model {provider.model} loaded from {model.path} in {model.load_seconds:.1f} s")
    else:
        backend = RandomWalkBackend(args.seed or 0)
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None

    async def run() -> None:
        server = Server(backend, port=args.port, api_key=api_key)
        await server.start()
        out.line(f"listening on {server.base_url}  (e.g. CONSTRAIN_BASE_URL={server.base_url} constrain sql ...)")
        out.json({"event": "listening", "base_url": server.base_url, "backend": backend.name})
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
