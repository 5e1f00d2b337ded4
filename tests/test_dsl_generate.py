"""The packaged DSLs through the generate loop, against a real grammar-enforcing server on 127.0.0.1
(random-walk backend): `.value` is the typed model, and a semantic refusal is fed back and re-asked."""

from __future__ import annotations

from typing import Iterator

import lark
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


def test_cron_walks_need_no_second_attempt(server: str) -> None:
    """Issue #15: every schedule the grammar lets a model write passes the typed checks first time."""
    grammar = constrain.load_grammar("dsl/cron")
    provider = providers.get("openai", base_url=server)
    for variant in range(6):  # the backend's walk depends on the conversation
        result = constrain.generate(f"Every weekday at 9:30 (#{variant})", grammar=grammar, provider=provider,
                                    max_attempts=1, max_tokens=512)  # random-walk pieces are bytes, not tokens
        assert isinstance(result.value, Cron) and result.value == grammar.parse_typed(result.raw)


class _Ordered(lark.Transformer):
    def start(self, children: list[lark.Token]) -> tuple[int, int]:
        low, high = int(children[0]), int(children[1])
        if low > high:
            raise ValueError(f"range {low}-{high} runs backwards")
        return low, high


def test_semantic_refusals_are_fed_back(server: str) -> None:
    """A check left out of a grammar costs a round trip: it is located and fed back, and the loop recovers."""
    grammar = constrain.Grammar('start: D "-" D\nD: /[0-9]/\n', name="ranges").with_transformer(_Ordered())
    provider = providers.get("openai", base_url=server)
    recovered = 0
    for variant in range(12):  # the backend's walk depends on the conversation
        try:
            result = constrain.generate(f"A range (#{variant})", grammar=grammar, provider=provider, max_attempts=4)
        except constrain.GenerationError as exc:
            attempts = list(exc.attempts)
            assert len(attempts) == 4 and all(isinstance(a.error, constrain.ValidationError) for a in attempts)
            continue
        assert result.value == grammar.parse_typed(result.raw)
        failed = result.attempts[:-1]
        for attempt in failed:  # every refusal the server's grammar could not prevent is located
            assert isinstance(attempt.error, constrain.ValidationError)
            assert attempt.error.engine == "semantic" and "backwards" in str(attempt.error)
            assert attempt.error.offset == 0
        recovered += bool(failed)
    assert recovered, "no conversation showed a refusal followed by a valid range"
