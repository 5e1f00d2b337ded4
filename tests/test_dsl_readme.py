"""The README's "Write your own DSL" walkthrough runs as written: the grammar file, every `$ constrain`
command with its shown output, and the Python blocks as doctests (generation against a real server on
127.0.0.1 with the random-walk backend, standing in for `constrain serve`)."""

from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import pytest

from constrain.cli import main
from constrain.server import RandomWalkBackend, Server, ServerThread

README = Path(__file__).resolve().parent.parent / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8080/v1"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Write your own DSL")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section(), flags=re.S)


def commands() -> list[tuple[list[str], list[str]]]:
    """(argv, the output lines shown under it) for each `$ constrain ...` line of the console blocks."""
    out: list[tuple[list[str], list[str]]] = []
    for block in blocks("console"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *shown = chunk.rstrip("\n").split("\n")
            out.append((shlex.split(command), shown))
    return out


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (grammar,) = blocks("lark")
    (tmp_path / "alerts.lark").write_text(grammar, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_section_has_its_steps() -> None:
    argv = [a for a, _ in commands()]
    assert [a[1] for a in argv] == ["check", "sample", "explain", "serve"]
    assert len(blocks("python")) == 4 and len(blocks("lark")) == 1


@pytest.mark.parametrize("index", range(3))
def test_commands_print_what_the_readme_shows(index: int, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, shown = commands()[index]
    assert argv[0] == "constrain"
    code = main(argv[1:])
    out = capsys.readouterr().out
    assert out.rstrip("\n").split("\n") == shown
    assert code == (1 if argv[1] == "explain" else 0)


def test_python_blocks_run_as_doctests(workdir: Path) -> None:
    with ServerThread(Server(RandomWalkBackend(seed=0))) as url:
        globs: dict[str, object] = {}
        parser = doctest.DocTestParser()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        for number, code in enumerate(blocks("python")):
            test = parser.get_doctest(code.replace(DOCUMENTED_URL, url), globs, f"README block {number}", str(README), 0)
            runner.run(test, out=lambda text: pytest.fail(text), clear_globs=False)
            globs.update(test.globs)  # DocTest copies its globals: carry names to the next block
        assert runner.failures == 0 and runner.tries >= 10

        # the shell form given under the last block
        prompt = "Page me when CPU stays above 90% for 5 minutes"
        assert main(["generate", "--grammar", "alerts.lark", "--base-url", url, "--provider", "openai", prompt]) == 0
