"""The packaged DSLs through the generate loop, against a real grammar-enforcing server on 127.0.0.1
(random-walk backend): `.value` is the typed model, and a semantic refusal is fed back and re-asked."""

from __future__ import annotations

from typing import Iterator

import pytest

import constrain
from constrain import providers
from constrain.dsl.chart import Chart
from constrain.dsl.cron import Cron
from constrain.dsl.filter import Expr
from constrain.server import RandomWalkBackend, Server, ServerThread


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with ServerThread(Server(RandomWalkBackend(seed=0))) as url:
        yield url


@pytest.mark.parametrize(("name", "model"), [("dsl/filter", Expr), ("dsl/chart", Chart)])
def test_value_is_the_typed_model(name: str, model: type, server: str) -> None:
    grammar = constrain.load_grammar(name)
    result = constrain.generate("Sales in Europe since 2020", grammar=name, provider=providers.get("openai", base_url=server))
    assert isinstance(result.value, model)
    assert result.value == grammar.parse_typed(result.raw) and str(result.value) == str(grammar.parse_typed(str(result.value)))


def test_semantic_refusals_are_fed_back(server: str) -> None:
    grammar = constrain.load_grammar("dsl/cron")
    provider = providers.get("openai", base_url=server)
    recovered = 0
    for variant in range(12):  # the backend's walk depends on the conversation
        try:
            result = constrain.generate(f"Every weekday at 9:30 (#{variant})", grammar=grammar, provider=provider,
                                        max_attempts=4)
        except constrain.GenerationError as exc:
            attempts = list(exc.attempts)
            assert len(attempts) == 4 and all(isinstance(a.error, constrain.ValidationError) for a in attempts)
            continue
        assert isinstance(result.value, Cron) and result.value == grammar.parse_typed(result.raw)
        failed = result.attempts[:-1]
        for attempt in failed:  # every refusal the server's grammar could not prevent is located
            assert isinstance(attempt.error, constrain.ValidationError)
            assert attempt.error.engine == "semantic" and "backwards" in str(attempt.error)
            assert attempt.error.offset is not None and attempt.raw[attempt.error.offset:][:1].isalnum()
        recovered += bool(failed)
    assert recovered, "no conversation showed a refusal followed by a valid schedule"
