// The constrain playground: plain JavaScript, no build step, no network beyond this server.
"use strict";

const EXAMPLES = {
  "dsl/cron": "*/5 9-17 * * MON-FRI",
  "dsl/filter": 'status = "open" AND priority >= 2',
  "dsl/chart": 'mark: bar\nx: region nominal\ny: sum(sales) quantitative\ntitle: "Sales by region"',
  "json": '{"name": "Ada", "languages": ["en", "fr"], "age": 36}',
  "sql/sqlite": "SELECT name, count(*) FROM users WHERE age > 30 GROUP BY name",
  "sql/postgres": "SELECT name, count(*) FROM users WHERE age > 30 GROUP BY name",
  "sql/duckdb": "SELECT name, count(*) FROM users WHERE age > 30 GROUP BY name",
};
const SEVERITY_RANK = { error: 0, warning: 1, info: 2 };
const DEBOUNCE_MS = 350;

const $ = (id) => document.getElementById(id);
const state = {
  origin: null,          // where the grammar text came from (the server applies its typed check while unedited)
  name: "",
  targets: new Set(["openai"]),
  inputIsExample: true,  // replace the input with an example/sample until the user types in it
  requests: null,
  provider: "openai",
};

// -- small helpers ---------------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

let inFlight = 0;  // API calls in flight, stale ones included (the tests wait on it)
let loads = 0;     // calls in flight that change what the panels judge (the grammar list, a grammar, a schema)
let lastTiming = "";
const runners = [];
function setStatus() {
  const status = $("status");
  // "up to date" only while every panel shows the answer for the newest version of what it judges
  const busy = loads > 0 || runners.some((r) => r.pending);
  status.className = "status " + (busy ? "busy" : "idle");
  status.textContent = busy ? "checking…" : "up to date" + (lastTiming ? ` · ${lastTiming}` : "");
  status.dataset.inFlight = String(inFlight);
}

async function api(path, body) {
  inFlight++;
  setStatus();
  try {
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data;
    try { data = await response.json(); } catch (e) { data = { error: { type: "HTTPError", message: `HTTP ${response.status}` } }; }
    return { status: response.status, data };
  } catch (e) {
    return { status: 0, data: { error: { type: "ConnectionError", message: "the playground server does not answer" } } };
  } finally {
    inFlight--;
    setStatus();
  }
}

async function loading(work) {  // the status is busy until work (which changes what the panels judge) is done
  loads++;
  setStatus();
  try { return await work(); } finally { loads--; setStatus(); }
}

// One panel's judge, debounced. Every change the panel depends on bumps its version; each request carries the
// version it judges, and only the answer for the newest version is drawn. A late answer for an older version
// is dropped: the change that outdated it scheduled a request of its own, sent without waiting for the late one.
function runner(ask, draw, delay = DEBOUNCE_MS) {
  let timer = null;
  const judge = {
    version: 0,  // of what the panel judges
    drawn: 0,    // the version whose answer the panel shows
    get pending() { return judge.drawn !== judge.version; },
    schedule() { judge.version++; clearTimeout(timer); timer = setTimeout(go, delay); setStatus(); },
    now() { judge.version++; clearTimeout(timer); go(); },
  };
  async function go() {
    const version = judge.version, question = ask();  // what the editors hold at this version
    const answer = await api(question.path, { ...question.body, version });
    if (version !== judge.version) return;
    judge.drawn = version;
    draw(answer, question);
    setStatus();
  }
  runners.push(judge);
  return judge;
}

// -- an editor: textarea over a backdrop that draws marks, with a line-number gutter ----------------------
class Editor {
  constructor(root) {
    this.textarea = root.querySelector("textarea");
    this.backdrop = root.querySelector(".backdrop");
    this.gutter = root.querySelector(".gutter");
    this.marks = [];
    this.textarea.addEventListener("scroll", () => this.syncScroll());
    this.textarea.addEventListener("input", () => this.render());
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        document.execCommand("insertText", false, "    ");
      }
    });
  }
  get value() { return this.textarea.value; }
  set value(text) { this.textarea.value = text; this.textarea.scrollTop = 0; this.render(); }
  setMarks(marks) { this.marks = marks; this.render(); }
  syncScroll() {
    this.backdrop.scrollTop = this.textarea.scrollTop;
    this.backdrop.scrollLeft = this.textarea.scrollLeft;
    this.gutter.scrollTop = this.textarea.scrollTop;
  }
  render() {
    const lines = this.textarea.value.split("\n");
    const byLine = new Map();
    for (const mark of this.marks) {
      if (!(mark.line >= 1 && mark.line <= lines.length)) continue;
      if (!byLine.has(mark.line)) byLine.set(mark.line, []);
      byLine.get(mark.line).push(mark);
    }
    // gutter: line numbers, coloured where a finding sits
    const gutter = document.createDocumentFragment();
    lines.forEach((_, index) => {
      const number = index + 1, here = byLine.get(number) || [];
      const div = el("div", { "data-line": String(number), text: String(number) });
      if (here.length) {
        const worst = here.reduce((a, b) => (SEVERITY_RANK[a.severity] <= SEVERITY_RANK[b.severity] ? a : b));
        div.className = "has-" + worst.severity;
        div.title = here.map((m) => m.title).join("\n");
      }
      gutter.append(div);
    });
    gutter.append(el("div", { text: "" }));
    this.gutter.replaceChildren(gutter);
    // backdrop: the same text, invisible, with <mark>s under the marked characters
    const html = lines.map((line, index) => {
      const here = byLine.get(index + 1);
      if (!here) return escapeHtml(line);
      const chars = Array.from(line);  // columns count code points, like Python
      const spans = new Map();
      for (const mark of here) {
        const start = Math.max(0, (mark.column || 1) - 1);
        let length = 1;
        if (mark.text && chars.slice(start, start + Array.from(mark.text).length).join("") === mark.text) length = Array.from(mark.text).length;
        const old = spans.get(start);
        if (!old || SEVERITY_RANK[mark.severity] < SEVERITY_RANK[old.severity]) spans.set(start, { ...mark, length, titles: [] });
        spans.get(start).titles.push(mark.title);
      }
      // a mark inside an earlier one adds its message to that one (the text shows one mark per character)
      const ordered = [...spans.keys()].sort((a, b) => a - b);
      let outer = null;
      for (const start of ordered) {
        const span = spans.get(start);
        if (outer && start < outer.start + outer.length) {
          outer.titles.push(...span.titles);
          if (SEVERITY_RANK[span.severity] < SEVERITY_RANK[outer.severity]) outer.severity = span.severity;
          span.inside = true;
        } else { span.start = start; outer = span; }
      }
      let out = "", at = 0;
      for (const start of ordered) {
        const span = spans.get(start);
        if (span.inside) continue;
        out += escapeHtml(chars.slice(at, start).join(""));
        const attrs = `class="${span.severity}${start >= chars.length ? " at-end" : ""}" data-line="${index + 1}" ` +
          `data-column="${start + 1}" title="${escapeHtml(span.titles.join("\n"))}"`;
        out += `<mark ${attrs}>${escapeHtml(chars.slice(start, start + span.length).join(""))}</mark>`;
        at = start + span.length;
      }
      return out + escapeHtml(chars.slice(at).join(""));
    }).join("\n");
    this.backdrop.innerHTML = html + "\n ";
    this.syncScroll();
  }
  reveal(line, column) {
    const lines = this.textarea.value.split("\n");
    let index = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) index += lines[i].length + 1;
    const target = Math.min(index + Array.from(lines[line - 1] || "").slice(0, column - 1).join("").length, this.textarea.value.length);
    this.textarea.focus();
    this.textarea.setSelectionRange(target, target);
    const lineHeight = parseFloat(getComputedStyle(this.textarea).lineHeight) || 19;
    this.textarea.scrollTop = Math.max(0, (line - 4) * lineHeight);
    this.syncScroll();
  }
}

const grammarEditor = new Editor($("grammar-editor"));
const textEditor = new Editor($("text-editor"));

function grammarBody(extra = {}) {
  return { grammar: grammarEditor.value, origin: state.origin, ...extra };
}

// -- check: findings as marks, the hang probe, provider requests ------------------------------------------
const checkRunner = runner(() => {
  const targets = [...state.targets].sort();
  return { path: "/api/check", body: grammarBody({ targets }), targets };
}, ({ status, data }, { targets }) => {
  const summary = $("check-summary"), hang = $("hang"), list = $("diagnostics");
  if (status !== 200) {
    summary.className = "summary bad";
    summary.textContent = `${data.error.type}: ${data.error.message}`;
    hang.textContent = ""; list.replaceChildren();
    grammarEditor.setMarks([]);
    return;
  }
  lastTiming = `check ${data.seconds.toFixed(2)} s`;
  const diagnostics = data.diagnostics;
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  summary.className = "summary " + (errors ? "bad" : "ok");
  summary.textContent = errors
    ? `${errors} error(s), ${diagnostics.length - errors} other finding(s)`
    : `builds in lark-python${data.parser ? ` (${data.parser})` : ""} and llguidance` +
      (diagnostics.length ? `; ${diagnostics.length} finding(s)` : "; no findings") +
      (targets.length ? ` for ${targets.join(", ")}` : "");
  hang.className = "hang" + (data.hang_probe.hangs ? " bad" : "");
  hang.textContent = "hang probe: " + (data.hang_probe.hangs ? "HANGS — " : data.hang_probe.ran ? "terminates — " : "not run — ") + data.hang_probe.message;
  $("grammar-name").textContent = state.name + (data.typed ? " · typed check on" : state.origin ? " · edited: engines only" : "");
  list.replaceChildren(...diagnostics.map((d) => el("li", { class: d.severity, onclick: () => grammarEditor.reveal(d.line, d.column) },
    el("span", { class: "where", text: `${d.line}:${d.column}` }),
    el("span", { class: "sev", text: d.severity }),
    d.message + " ",
    el("span", { class: "code", text: `(${d.code}, ${d.engine})${d.text ? " [" + d.text + "]" : ""}` }))));
  // notes about the whole grammar (info at 1:1 with no text) are listed, not marked
  grammarEditor.setMarks(diagnostics.filter((d) => d.severity !== "info" || d.text).map((d) => ({
    line: d.line, column: d.column, severity: d.severity, text: d.text,
    title: `${d.severity}: ${d.message} (${d.code}, ${d.engine})`,
  })));
  state.requests = data.requests;
  renderRequest();
});

// -- explain: both engines' verdicts on the test input ----------------------------------------------------
function expectedText(list) {
  if (!list || !list.length) return "";
  return list.slice(0, 24).join(", ") + (list.length > 24 ? `, … (${list.length - 24} more)` : "");
}

const explainRunner = runner(() => {
  const text = textEditor.value;
  return { path: "/api/explain", body: grammarBody({ text }), text };
}, ({ status, data }, { text }) => {
  const body = $("verdicts").querySelector("tbody"), note = $("explain-note"), tree = $("tree");
  $("verdicts").dataset.text = text;  // which input the table shows (the tests wait on it)
  if (status !== 200) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "note bad", text: `${data.error.type}: ${data.error.message}` })));
    note.textContent = ""; tree.textContent = "";
    textEditor.setMarks([]);
    return;
  }
  const rows = data.engines.map((v) => {
    const kind = v.engine.startsWith("lark") ? "lark" : v.engine;
    const error = v.error;
    return el("tr", { id: `verdict-${kind}`, "data-ok": String(v.ok) },
      el("td", { text: v.engine }),
      el("td", {}, el("span", { class: "badge " + (v.ok ? "ok" : "bad"), text: v.ok ? "accepted" : "refused" }),
        error ? " " + error.message : ""),
      el("td", { text: error && error.line != null ? `${error.line}:${error.column} (byte ${error.offset})` : "" }),
      el("td", { class: "expected", text: expectedText(v.expected) }));
  });
  if (!data.typed) rows.push(el("tr", { id: "verdict-typed", "data-ok": "none" }, el("td", { text: "typed" }),
    el("td", { colspan: "3" }, el("span", { class: "badge none", text: "none" }),
      state.origin ? " the grammar was edited: only the engines judge" : " this grammar has no typed check")));
  body.replaceChildren(...rows);
  note.className = "note" + (data.agree ? "" : " bad");
  note.textContent = data.agree ? "" : "the engines disagree: a model constrained by llguidance " +
    (data.engines[1].ok ? "can" : "cannot") + " write this text, yet lark-python " + (data.engines[0].ok ? "accepts" : "refuses") + " it";
  tree.textContent = data.value != null ? data.value + "\n\n" + (data.tree || "") : (data.tree || "(no parse tree: lark-python refuses the input)");
  textEditor.setMarks(data.engines.filter((v) => !v.ok && v.error && v.error.line != null).map((v) => ({
    line: v.error.line, column: v.error.column, severity: "error",
    title: `${v.engine}: ${v.error.message}${v.expected.length ? "; expected " + expectedText(v.expected) : ""}`,
  })));
});

// -- samples ----------------------------------------------------------------------------------------------
const sampleRunner = runner(() => {
  const n = Math.min(50, Math.max(1, parseInt($("sample-n").value, 10) || 6));
  const seed = Math.max(0, parseInt($("sample-seed").value, 10) || 0);
  return { path: "/api/sample", body: grammarBody({ n, seed }) };
}, ({ status, data }) => {
  const list = $("samples");
  if (status !== 200) {
    list.replaceChildren(el("li", { class: "why", text: `${data.error.type}: ${data.error.message}` }));
    return;
  }
  if (!data.samples.length) {
    list.replaceChildren(el("li", { class: "muted", text: `no walk ended within ${data.max_bytes} bytes` }));
    return;
  }
  list.replaceChildren(...data.samples.map((s) => {
    const badges = [el("span", { class: "badge " + (s.lark_ok ? "ok" : "bad"), text: s.lark_ok ? "lark ✓" : "lark ✗" })];
    if (s.typed) badges.push(el("span", { class: "badge " + (s.typed.ok ? "ok" : "bad"), text: s.typed.ok ? "typed ✓" : "typed ✗", title: s.typed.message }));
    const why = !s.lark_ok ? s.lark_error.message : s.typed && !s.typed.ok ? s.typed.message : "";
    return el("li", { title: "use as the test input", onclick: () => { setInput(s.text, false); } },
      el("code", { text: s.text === "" ? "(empty)" : s.text }), ...badges, why ? el("span", { class: "why", text: why }) : null);
  }));
  // never into the field the user is in: a sample arriving between their click and their first key would
  // end up in front of what they type
  const typing = document.activeElement === textEditor.textarea;
  if (state.inputIsExample && !textEditor.value && !typing) setInput(data.samples[0].text, true);
});

// -- provider requests ------------------------------------------------------------------------------------
function renderRequest() {
  const request = state.requests && state.requests[state.provider];
  $("request-endpoint").textContent = request ? request.endpoint : "";
  $("request-body").textContent = !request ? "" : request.error ? `cannot build: ${request.error}` : JSON.stringify(request.body, null, 2);
}
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
    state.provider = tab.dataset.provider;
    renderRequest();
  });
}
$("copy-request").addEventListener("click", async () => {
  const text = $("request-body").textContent;
  try { await navigator.clipboard.writeText(text); } catch (e) {
    const range = document.createRange(); range.selectNodeContents($("request-body"));
    getSelection().removeAllRanges(); getSelection().addRange(range); document.execCommand("copy");
  }
  $("copy-request").textContent = "copied";
  setTimeout(() => { $("copy-request").textContent = "copy"; }, 1200);
});

// -- loading grammars -------------------------------------------------------------------------------------
function setInput(text, isExample) {
  textEditor.value = text;
  state.inputIsExample = isExample;
  explainRunner.now();
}

function setGrammar(name, text, origin, example) {
  state.name = name; state.origin = origin;
  $("grammar-name").textContent = name;
  grammarEditor.value = text;
  grammarEditor.setMarks([]);
  if (state.inputIsExample || !textEditor.value) {
    textEditor.value = example || "";
    state.inputIsExample = true;
  }
  checkRunner.now(); explainRunner.now(); sampleRunner.now();
}

const loadPackaged = (name) => loading(async () => {
  const { status, data } = await api(`/api/grammar?name=${encodeURIComponent(name)}`);
  if (status === 200) setGrammar(data.name, data.text, data.origin, EXAMPLES[data.name] || "");
});

function showSchemaForm(kind) {
  $("schema-panel").classList.toggle("hidden", !kind);
  $("json-schema-form").classList.toggle("hidden", kind !== "json-schema");
  $("sql-schema-form").classList.toggle("hidden", kind !== "sql");
  $("schema-result").textContent = "";
}

const compileSchema = (body) => loading(async () => {
  const result = $("schema-result");
  result.className = "result"; result.textContent = "compiling…";
  const { status, data } = await api("/api/compile-schema", body);
  if (status !== 200) {
    result.className = "result bad";
    result.textContent = `${data.error.type}: ${data.error.message}`;
    return;
  }
  const parts = [`compiled to grammar "${data.name}" (${data.grammar.split("\n").length} lines).`];
  if (data.tables) parts.push(`tables: ${Object.entries(data.tables).map(([t, cols]) => `${t}(${Object.keys(cols).join(", ")})`).join("; ")}`);
  if (data.widenings && data.widenings.length) parts.push("widened (left to the validator): " + data.widenings.map((w) => `${w.keyword} at ${w.pointer}`).join(", "));
  else if (body.kind === "json-schema") parts.push("no widenings: the grammar states the whole schema.");
  result.textContent = parts.join(" ");
  let example = "";
  if (data.tables) {
    const [table, cols] = Object.entries(data.tables)[0] || [];
    if (table) example = `SELECT ${Object.keys(cols).slice(0, 2).join(", ") || "*"} FROM ${table}`;
  }
  state.inputIsExample = true;
  textEditor.value = "";
  setGrammar(data.name, data.grammar, data.origin, example);
});

$("schema-compile").addEventListener("click", () => compileSchema({
  kind: "json-schema", schema: $("schema-input").value, widen: $("schema-widen").checked, compact: $("schema-compact").checked,
}));
$("ddl-compile").addEventListener("click", () => compileSchema({ kind: "ddl", ddl: $("ddl-input").value, dialect: $("ddl-dialect").value }));
$("sqlite-file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const bytes = new Uint8Array(reader.result);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    compileSchema({ kind: "sqlite", database_base64: btoa(binary), filename: file.name });
  };
  reader.readAsArrayBuffer(file);
});

$("grammar-select").addEventListener("change", (event) => {
  const value = event.target.value;
  if (value === ":json-schema" || value === ":sql") { showSchemaForm(value.slice(1)); return; }
  showSchemaForm(null);
  if (value === ":initial") setGrammar(state.initial.name, state.initial.text, state.initial.origin, "");
  else loadPackaged(value);
});

grammarEditor.textarea.addEventListener("input", () => { checkRunner.schedule(); explainRunner.schedule(); sampleRunner.schedule(); });
textEditor.textarea.addEventListener("input", () => { state.inputIsExample = false; explainRunner.schedule(); });
$("sample-draw").addEventListener("click", () => { $("sample-seed").value = String((parseInt($("sample-seed").value, 10) || 0) + 1); sampleRunner.now(); });

// -- start ------------------------------------------------------------------------------------------------
(async function start() {
  const { status, data } = await loading(() => api("/api/grammars"));
  if (status !== 200) { $("status").textContent = "the playground server does not answer"; return; }
  state.initial = data.initial;
  if (data.database) {  // opened with --db: its schema, read from the catalog, is the SQL form's DDL
    $("ddl-input").value = data.database.ddl;
    $("ddl-dialect").value = data.database.dialect;
    $("status").title = `SQL grammar of ${data.database.url}`;
  }
  const select = $("grammar-select");
  const packaged = el("optgroup", { label: "packaged grammars" },
    ...data.grammars.map((g) => el("option", { value: g.name, title: g.description, text: g.name })));
  const compiled = el("optgroup", { label: "compile from a schema" },
    el("option", { value: ":json-schema", text: "JSON Schema…" }),
    el("option", { value: ":sql", text: "SQL schema (SQLite file or DDL)…" }));
  const packagedOrigin = data.initial.origin && data.initial.origin.name;
  if (!packagedOrigin) select.append(el("option", { value: ":initial", text: data.initial.label || data.initial.name }));
  select.append(packaged, compiled);
  select.value = packagedOrigin ? data.initial.origin.name : ":initial";
  const targets = $("targets");
  for (const target of data.targets) {
    const box = el("input", { type: "checkbox", value: target, id: `target-${target}` });
    box.checked = state.targets.has(target);
    box.addEventListener("change", () => { box.checked ? state.targets.add(target) : state.targets.delete(target); checkRunner.now(); });
    targets.append(el("label", {}, box, " " + target));
  }
  setGrammar(data.initial.name, data.initial.text, data.initial.origin, data.initial.example || EXAMPLES[data.initial.name] || "");
})();
