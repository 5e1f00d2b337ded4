"""The documentation site builds (`mkdocs build --strict`), and every code block of the getting-started page, the
grammars page and the guides runs as written, so the docs cannot drift from the code.

How a page runs, in a fresh folder, its blocks in order:

- a block whose fence carries `title="NAME"` is a file the page uses: it is written as NAME first;
- ```` ```python ```` blocks share one namespace per page: a block with `>>>` prompts is a doctest (ELLIPSIS),
  any other is executed as a script;
- ```` ```console ```` blocks: each `$ constrain ...` line runs, and what it prints must be what the page shows
  under it (doctest's ELLIPSIS: `...` stands for any text);
- ```` ```bash ```` / ```` ```sh ```` blocks: each command runs and must exit 0 (a leading `NAME=value` sets the
  environment for that command);
- a page that connects to `postgresql://app:pw@127.0.0.1:5432/chinook` (or `app:$PW@...`) gets the test suite's
  private PostgreSQL server with Chinook loaded (tests/_dbservers.py), its port and password in place of those;
- `constrain serve` and `constrain playground` start in the background (on a free port, which replaces the
  page's documented port everywhere on the page) and stop when the page is done.

Models are real: what the page leaves to the default provider is the embedded model (the `[local]` extra, as in
CI), and a page that starts `constrain serve --backend random-walk` talks to that real server.

A block that cannot run by its nature carries `title="not run: KIND"` (shown above the block on the site),
and KIND must be one of `NOT_RUN`: installing packages, benchmarks that take hours, and examples that need an
OpenAI API key.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.resources
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from constrain.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUN_PAGES = [DOCS / "index.md", DOCS / "grammars.md", *sorted((DOCS / "guides").glob("*.md"))]

NOT_RUN = {
    "pip install": "installs packages",
    "benchmark": "a benchmark run (minutes to hours, and corpora)",
    "needs an OpenAI API key": "calls OpenAI's API with a key",
}
RUN_LANGUAGES = {"python", "console", "bash", "sh"}
SHOWN_LANGUAGES = {"", "text", "lark", "json", "jsonl", "sql"}  # outputs and file contents, not code
FENCE = re.compile(r"^```([a-z]*)(.*?)\n(.*?)^```[ \t]*$", re.M | re.S)
POSTGRES_HOST = "127.0.0.1:5432"
BACKGROUND = {"serve": r"listening on (http://127\.0\.0\.1:\d+)/v1", "playground": r"constrain playground: (http://127\.0\.0\.1:\d+)/"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> str | None:
        return self.title[len("not run: "):] if self.title and self.title.startswith("not run: ") else None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        title = re.search(r'title="([^"]*)"', match.group(2))
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, line, match.group(1), title.group(1) if title else None, match.group(3)))
    return found


def all_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


# --- the site -------------------------------------------------------------------------------------------------


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """What CI builds: no warning (a broken link, a missing page, an API name that does not resolve) is allowed,
    and nothing is fetched from the network."""
    pytest.importorskip("mkdocs", reason="the docs tools are in the [dev] extra")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in index  # Material's `font: false`: no web fonts
    assert (tmp_path / "site" / "playground.png").is_file()
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("constrain.generate.generate", "constrain.sql.ask.ask", "constrain.sql.Schema", "constrain.json_schema.grammar",
                 "constrain.dsl.cron.Cron", "constrain.Grammar.parse_typed"):
        assert f'id="{name}"' in api, name
    assert not re.search(r'id="constrain[\w.]*\._', api), "a private name on the API page"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in all_pages():
        assert str(page.relative_to(DOCS)) in nav, page


# --- what runs ------------------------------------------------------------------------------------------------


def test_every_block_of_the_run_pages_runs_or_says_why_not() -> None:
    """A code block is run, or it is a file or an output the page shows, or it carries an allowed not-run kind
    that fits what it holds."""
    for page in RUN_PAGES:
        for block in blocks(page):
            kind = block.not_run
            assert block.language in RUN_LANGUAGES | SHOWN_LANGUAGES, f"{block.where}: unknown language {block.language!r}"
            if kind is None:
                assert not re.search(r"^\s*(\$ )?pip install", block.text, re.M), f"{block.where}: pip install, not marked"
                assert "python bench/" not in block.text, f"{block.where}: a benchmark, not marked"
                continue
            assert kind in NOT_RUN, f"{block.where}: not-run kind {kind!r} is not one of {sorted(NOT_RUN)}"
            if kind == "pip install":
                assert "pip install" in block.text, block.where
            elif kind == "benchmark":
                assert "bench/" in block.text, block.where
            else:
                assert "openai" in block.text.lower(), block.where


def test_the_not_run_blocks_are_few() -> None:
    marked = [b for page in RUN_PAGES for b in blocks(page) if b.not_run]
    run = [b for page in RUN_PAGES for b in blocks(page) if not b.not_run and b.language in RUN_LANGUAGES]
    assert len(run) > 3 * len(marked), (len(run), [b.where for b in marked])


def test_the_dsl_walkthrough_has_its_steps() -> None:
    """The DSL guide's walkthrough (once the README's): the grammar file, check / sample / explain with their
    output, a server, and the Python steps as doctests."""
    page = DOCS / "guides" / "dsl.md"
    text = page.read_text(encoding="utf-8")
    walkthrough = [b for b in blocks(page) if text.index("## From an empty file") < text.index(b.text)]
    commands = [c.split()[1] for b in walkthrough if b.language == "console" for c in re.findall(r"^\$ (.*)$", b.text, re.M)]
    assert commands == ["check", "sample", "explain", "serve"]
    assert [b.title for b in walkthrough if b.language == "lark"] == ["alerts.lark"]
    assert sum(">>>" in b.text for b in walkthrough if b.language == "python") == 3
    assert sum(">>>" in b.text for b in blocks(page) if b.language == "python") == 4  # and the cron refusal


# --- running a page -------------------------------------------------------------------------------------------


def _needs_the_embedded_model() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        reason = "the docs' examples use the embedded model: the [local] extra (llama-cpp-python) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run them: {reason}")
        pytest.skip(reason)


class PageRun:
    def __init__(self, page: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.page = page
        self.workdir = workdir
        self.capsys = capsys
        self.globs: dict[str, object] = {"__name__": "__docs__"}
        self.servers: list[subprocess.Popen[str]] = []
        self.renamed: dict[str, str] = {}

    def substituted(self, text: str) -> str:
        for documented, actual in self.renamed.items():
            text = text.replace(documented, actual)
        return text

    def run(self) -> None:
        page_blocks = blocks(self.page)
        for block in page_blocks:
            if block.title and not block.not_run:
                path = self.workdir / block.title
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.text, encoding="utf-8")
        for block in page_blocks:
            if block.not_run or block.language not in RUN_LANGUAGES:
                continue
            text = block.text
            started = time.monotonic()
            if block.language == "python":
                self.python(block, text)
            elif block.language == "console":
                self.console(block, text)
            else:
                self.shell(block, text)
            if os.environ.get("CONSTRAIN_DOCS_TIMES"):  # where a page's time goes
                print(f"{block.where}: {time.monotonic() - started:.1f} s", file=sys.__stderr__)

    def python(self, block: Block, text: str) -> None:
        text = self.substituted(text)
        if ">>>" in text:
            test = doctest.DocTestParser().get_doctest(text, self.globs, block.where, str(block.page), block.line)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            runner.run(test, out=lambda report: pytest.fail(f"{block.where}:\n{report}"), clear_globs=False)
            self.globs.update(test.globs)  # DocTest copies its globals: carry names to the next block
        else:
            exec(compile(text, block.where, "exec"), self.globs)  # noqa: S102 - the page's own code

    def console(self, block: Block, text: str) -> None:
        for chunk in re.split(r"^\$ ", text, flags=re.M)[1:]:
            command, _, shown = self.substituted(chunk).partition("\n")
            argv = shlex.split(command, comments=True)
            if self.background(argv, block):
                continue
            code, printed = self.constrain(argv, block)
            checker = doctest.OutputChecker()
            assert checker.check_output(shown, printed, doctest.ELLIPSIS), (
                f"{block.where}: `{command}` printed\n{printed}\nand the page shows\n{shown}")
            assert code == (1 if argv[1] == "explain" else 0), f"{block.where}: `{command}` exited {code}"

    def shell(self, block: Block, text: str) -> None:
        for command in re.sub(r"\\\n", " ", text).split("\n"):
            argv = shlex.split(self.substituted(command), comments=True)
            if not argv:
                continue
            env = {}
            while "=" in argv[0] and not argv[0].startswith("-"):
                name, _, value = argv.pop(0).partition("=")
                env[name] = value
            if argv[-1] == "&":
                argv.pop()
            if self.background(argv, block):
                continue
            argv = [os.path.expandvars(arg) for arg in argv]
            with _environment(env):
                code, printed = self.constrain(argv, block)
            assert code == 0, f"{block.where}: `{command}` exited {code}:\n{printed}"

    def constrain(self, argv: list[str], block: Block) -> tuple[int, str]:
        """Run in this process, with the import path the `constrain` script has: ``PYTHONPATH``, then the current
        folder (the page's, where its Python blocks' modules are written), as ``cli.main`` sets it up."""
        assert argv[0] == "constrain", f"{block.where}: only `constrain` commands run here: {argv}"
        self.capsys.readouterr()
        saved = sys.path[:]
        extra = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = extra + [str(self.workdir)] + [p for p in saved if p not in ("", ".", str(self.workdir))]
        written_here = {name: module for name, module in sys.modules.items() if self.wrote(module)}
        for name in written_here:
            del sys.modules[name]
        try:
            code = main(argv[1:])
        finally:
            sys.path[:] = saved
            sys.modules.update(written_here)
        captured = self.capsys.readouterr()
        return code, captured.out if captured.out or not captured.err else captured.out + captured.err

    def wrote(self, module: object) -> bool:
        """A module the page's Python blocks imported from the page's folder."""
        places = [getattr(module, "__file__", None) or "", *(getattr(module, "__path__", None) or [])]
        return any(str(place).startswith(str(self.workdir)) for place in places)

    def background(self, argv: list[str], block: Block) -> bool:
        """Start `constrain serve` / `constrain playground` on a free port; the page's port becomes that one."""
        if argv[:1] != ["constrain"] or argv[1] not in BACKGROUND:
            return False
        documented = argv[argv.index("--port") + 1] if "--port" in argv else {"serve": "8080", "playground": "8765"}[argv[1]]
        args = [a if a != documented else "0" for a in argv[1:]] if "--port" in argv else [*argv[1:], "--port", "0"]
        proc = subprocess.Popen([sys.executable, "-m", "constrain", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=self.workdir)
        self.servers.append(proc)
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"{block.where}: `{shlex.join(argv)}` ended:\n{''.join(lines)}")
            lines.append(line)
            match = re.search(BACKGROUND[argv[1]], line)
            if match:
                self.renamed[f"127.0.0.1:{documented}"] = match.group(1).removeprefix("http://")
                return True
        pytest.fail(f"{block.where}: `{shlex.join(argv)}` did not start:\n{''.join(lines)}")

    def stop(self) -> None:
        for proc in self.servers:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder as a reader has it: Chinook's SQLite file under the names the guides use, and no remote
    provider configured (the default provider is the embedded model)."""
    chinook = importlib.resources.files("constrain") / "data" / "chinook.sqlite"
    with importlib.resources.as_file(chinook) as path:
        for name in ("Chinook_Sqlite.sqlite", "Chinook.sqlite"):
            shutil.copyfile(path, tmp_path / name)
    for name in ("OPENAI_API_KEY", "CONSTRAIN_PROVIDER", "CONSTRAIN_BASE_URL", "CONSTRAIN_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # the Python blocks import what the page wrote, as `python` there would
    return tmp_path


@pytest.mark.local_model
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_page_runs_as_written(page: Path, workdir: Path, capsys: pytest.CaptureFixture[str],
                                  request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_the_embedded_model()
    run = PageRun(page, workdir, capsys)
    if POSTGRES_HOST in page.read_text(encoding="utf-8"):
        server = request.getfixturevalue("postgres_server")
        run.renamed[POSTGRES_HOST] = f"127.0.0.1:{server.port}"
        run.renamed["app:pw@"] = f"app:{server.password}@"
        monkeypatch.setenv("PW", server.password)
    try:
        run.run()
    finally:
        run.stop()
