"""The playground page in a real headless Chromium, driven over WebDriver (plain HTTP with httpx).

Needs Debian's ``chromium`` and ``chromium-driver``. Locally the test skips (saying why) when they are
missing; under CI (``CI`` set) a missing browser is a failure, so CI always runs it. With
``CONSTRAIN_UPDATE_SCREENSHOT=1`` it also writes ``docs/playground.png`` (the screenshot the README and docs show).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from constrain import ValidationError, load_grammar
from constrain.playground import Playground
from constrain.playground._server import SlowAnswer

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "playground.png"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def _browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"the browser test {reason}, and CI must run it")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """The few WebDriver calls the test needs."""

    def __init__(self, http: httpx.Client, session: str) -> None:
        self.http, self.session = http, session

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/session/{self.session}{path}", json=body)
        value = response.json()["value"]
        if response.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def js(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def element(self, css: str) -> str:
        found = self._call("POST", "/element", {"using": "css selector", "value": css})
        assert ELEMENT in found, found
        return str(found[ELEMENT])

    def type_into(self, css: str, text: str) -> None:
        """Replace an editor's text by typing it, key by key, as a user would."""
        element = self.element(css)
        self.js("const t = arguments[0]; t.focus(); t.select();", {ELEMENT: element})
        self._call("POST", f"/element/{element}/value", {"text": "\ue003"})  # backspace over the selection
        self._call("POST", f"/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.element(css)}/click", {})

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", "/screenshot"))

    def wait(self, what: str, script: str, *args: Any, seconds: float = 40.0) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = self.js(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                state = self.js("return {status: document.getElementById('status').textContent, "
                                "summary: document.getElementById('check-summary').textContent, "
                                "verdicts: document.getElementById('verdicts').innerText}")
                raise AssertionError(f"timed out waiting for {what}; page: {json.dumps(state)}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium, driver = _browser()
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="constrain-chromium-")
    process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if http.get("/status").json()["value"]["ready"]:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("chromedriver did not start")
                time.sleep(0.1)
            options = {"binary": chromium, "args": CHROMIUM_FLAGS + [f"--user-data-dir={profile}", "--window-size=1440,1400"]}
            created = http.post("/session", json={"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": options}}})
            assert created.status_code == 200, created.text
            session = created.json()["value"]["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                http.delete(f"/session/{session}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Browser]:
    with Playground(workers=3) as playground:
        browser.get(playground.url)
        browser.wait("the first check", "return document.getElementById('check-summary').textContent !== ''")
        yield browser


EXAMPLE_CRON = "*/5 9-17 * * MON-FRI"  # the page's example input for dsl/cron
SHOWN = "document.getElementById('verdicts').dataset.text === document.getElementById('text-input').value"
IDLE = ("return document.getElementById('status').classList.contains('idle') && "
        "document.getElementById('grammar-input').value === arguments[0]")


def verdicts(page: Browser) -> Callable[[], dict[str, str]]:
    return lambda: page.js(
        "const out = {}; for (const row of document.querySelectorAll('#verdicts tbody tr')) "
        "out[row.id] = row.querySelector('.badge').textContent; return out;")


def test_typing_a_grammar_with_an_error_marks_its_line(page: Browser) -> None:
    grammar = 'start: greeting " " NAME\ngreeting: "hello" | "hi"\nNAME: /[A-Z](?=[a-z])[a-z]+/\n'
    page.type_into("#grammar-input", grammar)
    page.wait("the check of the typed grammar", IDLE + " && document.querySelector('#diagnostics li.error')", grammar)
    marks = page.js("return [...document.querySelectorAll('#grammar-editor .backdrop mark.error')]"
                    ".map(m => [m.dataset.line, m.dataset.column, m.title])")
    assert marks and all(line == "3" for line, _, _ in marks)
    # llguidance refuses the regex from 3:7, the lint names the lookaround at 3:13: one mark, both messages
    assert [column for _, column, _ in marks] == ["7"]
    assert "look-around" in marks[0][2] and "regex lookaround is refused" in marks[0][2]
    gutter = page.js("return [...document.querySelectorAll('#grammar-editor .gutter .has-error')].map(d => d.dataset.line)")
    assert gutter == ["3"]
    assert "error" in page.js("return document.getElementById('check-summary').textContent")
    listed = page.js("return document.querySelector('#diagnostics li.error .where').textContent")
    assert listed == "3:7"


def test_typing_an_input_shows_both_engines_verdicts(page: Browser) -> None:
    grammar = 'start: greeting " " NAME\ngreeting: "hello" | "hi"\nNAME: /[A-Z][a-z]{1,20}/\n'
    page.type_into("#grammar-input", grammar)
    page.wait("a clean check", IDLE + " && document.getElementById('check-summary').className === 'summary ok'", grammar)

    page.type_into("#text-input", "hello Ada")
    page.wait("accepting verdicts", "return document.getElementById('text-input').value === 'hello Ada' && " + SHOWN)
    assert verdicts(page)() == {"verdict-lark": "accepted", "verdict-llguidance": "accepted", "verdict-typed": "none"}
    assert page.js("return document.getElementById('tree').textContent").startswith("start")
    assert page.js("return document.querySelectorAll('#text-editor .backdrop mark').length") == 0

    page.type_into("#text-input", "hello ada")
    page.wait("refusing verdicts", "return document.getElementById('text-input').value === 'hello ada' && " + SHOWN)
    assert verdicts(page)() == {"verdict-lark": "refused", "verdict-llguidance": "refused", "verdict-typed": "none"}
    mark = page.js("const m = document.querySelector('#text-editor .backdrop mark.error'); "
                   "return [m.dataset.line, m.dataset.column, m.textContent, m.title]")
    assert mark[:3] == ["1", "7", "a"] and "llguidance" in mark[3]
    expected = page.js("return document.querySelector('#verdict-llguidance .expected').textContent")
    assert expected == "'A'..'Z'"
    assert page.js("return document.querySelector('#verdict-lark td:nth-child(3)').textContent") == "1:7 (byte 6)"

    # the samples and the provider requests follow the grammar
    page.wait("samples", "return document.querySelectorAll('#samples li .badge.ok').length > 0")
    request = json.loads(page.js("return document.getElementById('request-body').textContent"))
    assert request["tools"][0]["format"]["definition"] == grammar
    page.click('.tab[data-provider="vllm"]')
    assert json.loads(page.js("return document.getElementById('request-body').textContent"))["structured_outputs"] == {"grammar": grammar}


def test_json_schema_compiles_into_the_grammar_editor(page: Browser) -> None:
    page.js("const s = document.getElementById('grammar-select'); s.value = ':json-schema'; "
            "s.dispatchEvent(new Event('change'));")
    page.type_into("#schema-input", '{"type": "array", "items": {"type": "integer"}, "uniqueItems": true}')
    page.click("#schema-widen")
    page.click("#schema-compile")
    page.wait("the compiled grammar", "return document.getElementById('grammar-input').value.startsWith('// JSON conforming')")
    assert "uniqueItems at #/uniqueItems" in page.js("return document.getElementById('schema-result').textContent")
    page.type_into("#text-input", "[1,1]")
    page.wait("the typed verdict", "return document.getElementById('text-input').value === '[1,1]' && " + SHOWN)
    assert verdicts(page)() == {"verdict-lark": "accepted", "verdict-llguidance": "accepted", "verdict-typed": "refused"}
    page.js("const s = document.getElementById('grammar-select'); s.value = 'dsl/cron'; s.dispatchEvent(new Event('change'));")
    assert page.js("return document.getElementById('schema-panel').classList.contains('hidden')")


def test_screenshot(page: Browser) -> None:
    """A packaged grammar with the vLLM target and a refused input: what the docs show."""
    page.js("const s = document.getElementById('grammar-select'); s.value = 'dsl/cron'; "
            "s.dispatchEvent(new Event('change'));")
    page.wait("the cron grammar", "return document.getElementById('grammar-input').value.startsWith('// Cron')")
    page.click("#target-vllm")
    page.type_into("#text-input", "*/5 9-17 * * MON-FRY")
    page.wait("the cron verdicts and findings", "return document.getElementById('text-input').value === '*/5 9-17 * * MON-FRY' "
              "&& " + SHOWN + " && document.querySelector('#grammar-editor .backdrop mark.warning') && "
              "document.getElementById('status').classList.contains('idle') && "
              "document.querySelectorAll('#samples li').length > 0")
    marks = page.js("return [...document.querySelectorAll('#text-editor .backdrop mark.error')]"
                    ".map(m => [m.dataset.line, m.dataset.column, m.textContent])")
    text = "*/5 9-17 * * MON-FRY"  # lark and llguidance each refuse it where they say; marked there
    cron = load_grammar("dsl/cron")
    try:
        cron.parse(text)
        raise AssertionError("lark accepts " + text)
    except ValidationError as exc:
        lark_at = exc.column
    llg_at = cron.llg_error(text).column  # type: ignore[union-attr]
    assert marks == [["1", str(lark_at), text[lark_at - 1]], ["1", str(llg_at), text[llg_at - 1]]]
    png = page.screenshot()
    assert png.startswith(b"\x89PNG")
    if os.environ.get("CONSTRAIN_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(png)


def test_a_database_opens_the_page_with_its_sql_grammar(browser: Browser) -> None:
    """``constrain playground --db``: the schema comes from the database's catalog (``sql.connect``), the
    grammar is bound to it, the SQL form holds its DDL, and the example query passes the typed check."""
    with Playground(db="chinook", workers=2) as playground:
        browser.get(playground.url)
        browser.wait("the database's grammar and its example's verdicts",
                     "return document.getElementById('grammar-name').textContent.includes('typed check on') && "
                     + SHOWN)
        assert browser.js("return document.getElementById('ddl-input').value").startswith("CREATE TABLE Album (")
        assert browser.js("return document.getElementById('ddl-dialect').value") == "sqlite"
        assert browser.js("return document.getElementById('text-input').value") == "SELECT * FROM Album LIMIT 5"
        assert verdicts(browser)() == {"verdict-lark": "accepted", "verdict-llguidance": "accepted",
                                       "verdict-typed": "accepted"}


# Records every input the verdicts table is drawn for, and every moment the status says "up to date" while the
# table shows another input than the editor holds (checked on each draw, status change and keystroke).
WATCH = """
const seen = window.watched = {drawn: [], stale: []};
const table = document.getElementById('verdicts'), status = document.getElementById('status');
const input = document.getElementById('text-input');
const look = () => {
  if (status.classList.contains('idle') && table.dataset.text !== input.value)
    seen.stale.push([status.textContent, table.dataset.text, input.value]);
};
new MutationObserver(() => { seen.drawn.push(table.dataset.text); look(); })
  .observe(table, {attributes: true, attributeFilter: ['data-text']});
new MutationObserver(look).observe(status, {attributes: true, childList: true, characterData: true, subtree: true});
input.addEventListener('input', look);
"""


def test_a_late_answer_for_older_text_is_dropped(browser: Browser) -> None:
    """Issue #23: the server holds back the answer about text A until text B has been judged. The page judges B
    without waiting for A's answer, says "up to date" only while it shows B's verdicts, and drops A's answer
    when it arrives at last."""
    late, newest = "*/5 [ * * *", "0 12 * * SUN"
    slow = SlowAnswer(lambda op, body: op == "explain" and body.get("text") == late)
    up_to_date = ("return document.getElementById('text-input').value === arguments[0] && " + SHOWN +
                  " && document.getElementById('status').classList.contains('idle')")
    with Playground(workers=3, slow=slow) as playground:
        try:
            browser.get(playground.url)
            browser.wait("the first verdicts", up_to_date, EXAMPLE_CRON)
            browser.js(WATCH)
            browser.type_into("#text-input", late)
            assert slow.held.wait(40), f"the page never asked about {late!r}"
            browser.type_into("#text-input", newest)
            browser.wait("the newest text's verdicts while the late answer is held", up_to_date, newest, seconds=30)
            assert not slow.sent.is_set()
        finally:
            slow.release.set()
        assert slow.sent.wait(30)
        browser.wait("the late answer to reach the page", "return document.getElementById('status').dataset.inFlight === '0'")
        assert browser.js(up_to_date, newest)
        assert browser.js("return document.getElementById('status').textContent").startswith("up to date")
        assert verdicts(browser)() == {"verdict-lark": "accepted", "verdict-llguidance": "accepted", "verdict-typed": "accepted"}
        watched = browser.js("return window.watched")
        assert late not in watched["drawn"] and watched["drawn"][-1] == newest
        assert watched["stale"] == []
