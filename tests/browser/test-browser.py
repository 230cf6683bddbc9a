#!/usr/bin/env python3
"""mtask-web's pages in headless Chromium, against fixture replies. Prints TAP.

Usage: test-browser.py SOURCE_ROOT BUILD_DIR

A small HTTP server of this script's own serves web/pages/ under the URL
layout of mtask-web (the pages at /, /tasks, /task/ID..., the files at
/static/NAME) with its Content-Security-Policy, and /api/NAME from the JSON
files in tests/browser/fixtures/ (NAME.json; task/ID.json...), shaped as the
admin calls of mtask.h reply; /api/tasks filters and pages the fixture's
tasks as the server does (tasks_page). It keeps the query string of every
API read, to check what a screen asks for, and can make every list say
"more": true. Chromium loads each screen with --dump-dom and
a virtual time budget; the checks read the DOM it prints, as a person would
read the page. In "xss" mode every string and number of every reply, and
every key under params, result and a stage's task counts, is replaced by
hostile markup: the DOM must hold it as text only. Screenshots of the
overview, a group and a task go to BUILD_DIR/browser-screenshots/.

Skipped (TAP SKIP) when Chromium is not installed (tools/setup installs it).
"""
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
PAGES = ("/", "/tasks", "/groups", "/syncs", "/workers", "/locks", "/pools", "/schedules")
PAGE_RE = re.compile(r"^/(task|group|stage)/[^/]+$")
MIME = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8"}
# What an attacker would store in a task: a script, an attribute breaking
# out into an img with onerror, an svg with onload, a javascript: link.
HOSTILE = ("<script>document.body.setAttribute('data-pwned','script')</script>"
           "\"><img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
           "'><svg onload=document.body.setAttribute('data-pwned','svg')>"
           "javascript:document.body.setAttribute('data-pwned','href')")

G1 = "65a2000000000000000000a1"
STAGE2 = "65a300000000000000000002"
SYNC_STAGE = "65a4000000000000000000b1"
T_FAIL, T_OK, T_RUN = "65a1000000000000000000f1", "65a1000000000000000000f2", "65a1000000000000000000f3"


def hostile(doc, key=None):
    """The reply with every displayed value replaced by HOSTILE (+ its old
    text), ObjectIds and dates kept (their types cannot hold markup)."""
    if isinstance(doc, dict):
        if "$oid" in doc or "$date" in doc:
            return doc
        keys_too = key in ("params", "result", "tasks") and not any(k in doc for k in ("_id", "queue"))
        return {(HOSTILE + k if keys_too else k): hostile(v, k) for k, v in doc.items()}
    if isinstance(doc, list):
        return [hostile(v, key) for v in doc]
    if isinstance(doc, bool) or doc is None:
        return doc
    if isinstance(doc, (int, float, str)):
        return HOSTILE + str(doc)
    return doc


def tasks_page(doc, query):
    """/api/tasks as the server answers it: the fixture's tasks (in the
    order the server gives, newest first) filtered by queue, status, type,
    worker (worker_pid) and q (24 hex digits: the _id; else text in
    status_message, ignoring case), then `skip` and `limit` (default 100),
    with "more" when the list goes on past the page."""
    one = {k: v[0] for k, v in query.items()}
    rows = doc.get("tasks", [])
    for key, field in (("queue", "queue"), ("status", "status"), ("type", "type"), ("worker", "worker_pid")):
        if key in one:
            rows = [t for t in rows if t.get(field) == one[key]]
    if "q" in one:
        q = one["q"]
        if re.fullmatch(r"[0-9a-fA-F]{24}", q):
            rows = [t for t in rows if t["_id"]["$oid"] == q.lower()]
        else:
            rows = [t for t in rows if q.lower() in str(t.get("status_message", "")).lower()]
    skip, limit = int(one.get("skip", 0)), int(one.get("limit", 100))
    return {"tasks": rows[skip:skip + limit], "more": len(rows) > skip + limit}


class Fixtures(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pages, fixtures):
        super().__init__(("127.0.0.1", 0), Handler)
        self.pages, self.fixtures = pages, fixtures
        self.mode = "normal"
        self.actions = False  # what GET /api/csrf says
        self.fail_first = 0   # API requests to fail with 503 from now on...
        self.fail_after = -1  # ...or the ones after this many succeeded
        self.api_log = []
        self.force_more = False  # every list reply says "more": true
        self.lock = threading.Lock()

    def api_fails(self):
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return True
            if self.fail_after == 0:
                return True
            if self.fail_after > 0:
                self.fail_after -= 1
            return False


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, ctype, body):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path == "/api/csrf":
            return self.send(200, "application/json", json.dumps({"csrf": "fixture-csrf", "actions": srv.actions}))
        if path.startswith("/api/"):
            name = path[len("/api/"):]
            srv.api_log.append(self.path)
            if srv.api_fails():
                return self.send(503, "application/json", json.dumps({"error": "database unreachable (fixture outage)"}))
            file = os.path.normpath(os.path.join(srv.fixtures, name + ".json"))
            if not file.startswith(srv.fixtures + os.sep) or not os.path.isfile(file):
                return self.send(404, "application/json", json.dumps({"error": "no fixture for " + name}))
            with open(file) as f:
                doc = json.load(f)
            if name == "tasks":
                doc = tasks_page(doc, urllib.parse.parse_qs(url.query))
            if srv.force_more and "more" in doc:
                doc["more"] = True
            if srv.mode == "xss":
                doc = hostile(doc)
            return self.send(200, "application/json", json.dumps(doc))
        if path.startswith("/static/"):
            file = os.path.normpath(os.path.join(srv.pages, path[len("/static/"):]))
            if not file.startswith(srv.pages + os.sep) or not os.path.isfile(file):
                return self.send(404, "text/plain", "not found")
            with open(file, "rb") as f:
                return self.send(200, MIME.get(os.path.splitext(file)[1], "application/octet-stream"), f.read())
        if path in PAGES or PAGE_RE.match(path):
            with open(os.path.join(srv.pages, "index.html"), "rb") as f:
                return self.send(200, MIME[".html"], f.read())
        return self.send(404, "text/plain", "not found")


class Dom(html.parser.HTMLParser):
    """The elements of a dumped DOM: (tag, attrs) in order, and its text."""

    def __init__(self, markup):
        super().__init__(convert_charrefs=True)
        self.elements, self.chunks = [], []
        self.rows, self.in_row = [], False  # each table row: its cells' text
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
            self.in_row = True
        elif tag in ("td", "th") and self.in_row:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "tr":
            self.in_row = False

    def handle_data(self, data):
        self.chunks.append(data)
        if self.in_row and self.rows[-1]:
            self.rows[-1][-1] += data

    def row(self, first):
        """The cells of the table row whose first cell is `first`."""
        return next((r for r in self.rows if r and r[0].strip() == first), None)

    def text(self):
        return re.sub(r"\s+", " ", "".join(self.chunks))

    def by_id(self, ident):
        return next((a for t, a in self.elements if a.get("id") == ident), None)


results = []


def check(ok, name, diag=""):
    results.append((bool(ok), name, diag))
    return ok


class Browser:
    def __init__(self, exe, build_dir):
        self.exe = exe
        self.profile = tempfile.mkdtemp(prefix="mtask-browser-", dir=build_dir)

    def run(self, url, *extra, budget=3000):
        cmd = [self.exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--user-data-dir=" + self.profile, "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=%d" % budget, *extra, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        return out

    def dom(self, url, budget=3000):
        out = self.run(url, "--dump-dom", budget=budget)
        return out.stdout, out.stderr

    def screenshot(self, url, path):
        out = self.run(url, "--screenshot=" + path, "--window-size=1280,1000", "--hide-scrollbars")
        return os.path.isfile(path) and os.path.getsize(path) > 0, out.stderr

    def close(self):
        shutil.rmtree(self.profile, ignore_errors=True)


def console_problems(stderr):
    """What the page's console said went wrong: a CSP refusal, an uncaught
    exception."""
    return [l for l in stderr.splitlines()
            if "Content Security Policy" in l or "Refused to" in l or "Uncaught" in l]


def main():
    if len(sys.argv) < 3:
        print("usage: test-browser.py SOURCE_ROOT BUILD_DIR", file=sys.stderr)
        return 2
    root, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("1..0 # SKIP chromium is not installed (tools/setup installs it)")
        return 0
    pages = os.path.join(root, "web", "pages")
    fixtures = os.path.join(root, "tests", "browser", "fixtures")
    shots = os.path.join(build, "browser-screenshots")
    os.makedirs(shots, exist_ok=True)
    srv = Fixtures(pages, fixtures)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    browser = Browser(exe, build)
    try:
        screens(browser, base, srv)
        live(browser, base, srv)
        buttons(browser, base, srv)
        xss(browser, base, srv)
        srv.actions = True
        xss(browser, base, srv, " (actions shown)")
        srv.actions = False
        screenshots(browser, base, shots)
    finally:
        browser.close()
        srv.shutdown()
    print("1..%d" % len(results))
    failed = 0
    for i, (ok, name, diag) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            for line in diag.splitlines()[:40]:
                print("# " + line)
    return 1 if failed else 0


def load(browser, base, path, budget=3000):
    markup, stderr = browser.dom(base + path, budget)
    dom = Dom(markup)
    banner = dom.by_id("banner")
    loaded = next((a.get("data-loaded") for t, a in dom.elements if t == "body"), None)
    return dom, banner, loaded, stderr


def screens(browser, base, srv):
    """Each screen loads, without CSP violations, and shows what a person needs."""
    srv.mode = "normal"
    expect = {
        "/": ["workers alive", "imports", "2m 5s", "send_mail", "maintenance", "Throughput, last hour",
              "failed, last hour"],
        "/tasks": ["Tasks", T_FAIL, "FAILED", "FINISHED", "WORK_IN_PROGRESS", "page 1, newest first",
                   "line 17 has 4 columns"],
        "/tasks?queue=reports&status=WORK_IN_PROGRESS": [],
        "/task/" + T_FAIL: ["FAILED", "partner-a/2026-11-28.csv: line 17 has 4 columns, expected 6",
                            "connection reset by partner-a", "Errors, last five", '"skip_header": true',
                            "waited 2m 2s", "ran 7.3 s", "read 16 of 240 lines", "failures 3 of 3",
                            "stage 2", "partner-a", "domain 1002, code 2"],
        "/task/" + T_OK: ['"rows": 240', "imported 240 rows", "ran 40 s"],
        "/task/" + T_RUN: ["running for", "pdf#0", "W-1#65a5000000000000000000c1"],
        "/groups": ["Nightly import of partner files", "2/3 stages", "Monthly invoices", "1/1 stages"],
        "/group/" + G1: ["Nightly import of partner files", "Stages", "complete", "running",
                         "3 / 3", "0 / 1", "CANCELLED"],
        "/stage/" + STAGE2: ["Jobs", "FINISHED", "FAILED", "CANCELLED", "imported 240 rows",
                             "line 17 has 4 columns", "3 of 3"],
        "/stage/" + SYNC_STAGE: ["fetch_files", "import_done", "sftp://partners"],
        "/syncs": ["nightly", "report", "import", "running"],
        "/workers": ["W-1", "app1", "4242", "imports, reports", "build_report", "lost", "2m 0s ago"],
        "/locks": ["partner-a", "stale", "held", T_RUN],
        "/pools": ["pdf: 1 of 2 slots in use", "timeout 300 s", "Slots of undeclared pools", "old"],
        "/schedules": ["Twice-daily cleanup", "every 43200 s (12h)", "2026-11-28 18:00:00Z"],
    }
    for path, needles in expect.items():
        srv.api_log.clear()
        dom, banner, loaded, stderr = load(browser, base, path)
        text = dom.text()
        name = "screen %s" % path
        check(loaded and int(loaded) >= 1, name + ": the page read the API and drew it", stderr[-2000:])
        check(banner is not None and "hidden" in banner, name + ": no error banner", text[:2000])
        missing = [n for n in needles if n not in text]
        check(not missing, name + ": shows what a person needs", "missing: %r\ntext: %s" % (missing, text[:3000]))
        problems = console_problems(stderr)
        check(not problems, name + ": no script error, nothing refused by the Content-Security-Policy",
              "\n".join(problems))
        if path.startswith("/tasks?"):
            check(any("queue=reports" in p and "status=WORK_IN_PROGRESS" in p for p in srv.api_log),
                  name + ": the filters in the query string go to /api/tasks", repr(srv.api_log))
    # The groups list's row: the description and "2/3 stages" side by side.
    dom, *_ = load(browser, base, "/groups")
    row = dom.row(G1)
    check(row and "Nightly import of partner files" in row and "2/3 stages" in row,
          "groups: the group's row shows its description and 2/3 stages", repr(dom.rows))
    # The stage's jobs: each task's status in its own row.
    dom, *_ = load(browser, base, "/stage/" + STAGE2)
    jobs = {t: dom.row(t) for t in (T_OK, T_FAIL, "65a1000000000000000000f4")}
    check(all(jobs.values()) and "FINISHED" in jobs[T_OK] and "FAILED" in jobs[T_FAIL]
          and "CANCELLED" in jobs["65a1000000000000000000f4"],
          "stage: each job's row shows its status", repr(dom.rows))
    # The failed task's error in its own box.
    dom, *_ = load(browser, base, "/task/" + T_FAIL)
    check(dom.by_id("task-error") is not None, "task: a failed task's error is shown in the error box")
    tasks_screen(browser, base, srv)
    stage_screen(browser, base, srv)
    lists_cut(browser, base, srv)
    dom, *_ = load(browser, base, "/workers")
    check(("a", {"href": "/tasks?worker=W-1"}) in dom.elements, "workers: a worker links to its tasks",
          repr([e for e in dom.elements if e[0] == "a"]))
    srv.api_log.clear()
    dom, *_ = load(browser, base, "/tasks?archive=true")
    box = next((a for t, a in dom.elements if t == "input" and a.get("name") == "archive"), {})
    check(any("archive=true" in p for p in srv.api_log) and "Tasks (archive)" in dom.text() and "checked" in box,
          "tasks: the archive switch reads the archive and stays on", repr(srv.api_log) + repr(box))
    # The overview's chart is an SVG drawn by the page.
    dom, *_ = load(browser, base, "/")
    lines = [a for tag, a in dom.elements if tag == "polyline"]
    check(len(lines) == 2 and all(len(a.get("points", "").split()) == 60 for a in lines),
          "overview: throughput and failures per minute drawn as two SVG lines of 60 points", repr(lines)[:500])


def api_reads(srv, name):
    """The query strings of the page's reads of /api/NAME, each a dict."""
    out = []
    for p in list(srv.api_log):
        u = urllib.parse.urlsplit(p)
        if u.path == "/api/" + name:
            out.append({k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()})
    return out


def pager(dom):
    return [a.get("rel") for t, a in dom.elements if t == "a" and a.get("rel")]


def ids(dom):
    return [r[0].strip() for r in dom.rows if r and re.fullmatch(r"[0-9a-f]{24}", r[0].strip())]


def tasks_screen(browser, base, srv):
    """The tasks screen asks the server for its filters and its page, and
    offers an older page exactly when the reply says "more"."""
    # The fixture's tasks, newest first: f5, f3, f1, f2, f4, f6.
    pages = {
        "/tasks?size=2": ({"skip": "0", "limit": "2"}, ["65a1000000000000000000f5", T_RUN], ["next"]),
        "/tasks?size=2&page=2": ({"skip": "2", "limit": "2"}, [T_FAIL, T_OK], ["prev", "next"]),
        # A full page the list ends with: no "older" link.
        "/tasks?size=2&page=3": ({"skip": "4", "limit": "2"},
                                 ["65a1000000000000000000f4", "65a1000000000000000000f6"], ["prev"]),
        "/tasks": ({"skip": "0", "limit": "50"}, None, []),
    }
    for path, (want, rows, links) in pages.items():
        srv.api_log.clear()
        dom, *_ = load(browser, base, path)
        reads = api_reads(srv, "tasks")
        check(reads and all(r.get(k) == v for r in reads for k, v in want.items()),
              "tasks %s: asks /api/tasks for %s" % (path, " ".join("%s=%s" % kv for kv in want.items())),
              repr(srv.api_log))
        if rows is not None:
            check(ids(dom) == rows, "tasks %s: shows the page the server sent, newest first" % path,
                  repr(ids(dom)))
        check(pager(dom) == links, "tasks %s: the links %r (an older page only with \"more\")" % (path, links),
              repr(pager(dom)))
    # "older" follows the server's "more", not a count of the rows.
    srv.force_more = True
    try:
        dom, *_ = load(browser, base, "/tasks?size=2&page=3")
        check(pager(dom) == ["prev", "next"], "tasks: a reply saying \"more\" gets the older page's link",
              repr(pager(dom)))
        # Past the deepest skip the server takes, no link: narrow the filter.
        srv.api_log.clear()
        dom, *_ = load(browser, base, "/tasks?size=500&page=201")
        check(api_reads(srv, "tasks")[:1] == [{"skip": "100000", "limit": "500"}] and pager(dom) == ["prev"]
              and "narrow the filter" in dom.text(),
              "tasks: no older page past skip 100000, the page says to narrow the filter",
              repr(srv.api_log) + repr(pager(dom)) + dom.text()[:1000])
    finally:
        srv.force_more = False
    # Worker and text go to the server; the rows are its reply.
    srv.api_log.clear()
    dom, *_ = load(browser, base, "/tasks?worker=W-2&q=Imported+240")
    reads = api_reads(srv, "tasks")
    check(reads and reads[0].get("worker") == "W-2" and reads[0].get("q") == "Imported 240",
          "tasks: the worker and text filters go to /api/tasks", repr(srv.api_log))
    check(ids(dom) == [T_OK], "tasks: the worker and text filters show the server's match", repr(ids(dom)))
    srv.api_log.clear()
    dom, *_ = load(browser, base, "/tasks?q=" + T_FAIL)
    check(api_reads(srv, "tasks")[:1] and api_reads(srv, "tasks")[0].get("q") == T_FAIL and ids(dom) == [T_FAIL],
          "tasks: an id in the text filter goes to /api/tasks and finds that task", repr(srv.api_log) + repr(ids(dom)))
    dom, *_ = load(browser, base, "/tasks?q=nothing+like+this")
    check(not ids(dom) and "No task matches." in dom.text() and pager(dom) == [],
          "tasks: no match says so, with no page link", dom.text()[:1500])


def stage_screen(browser, base, srv):
    """A group's stage: its group's description linking back, its jobs, and
    a note with a link when the server cut the jobs."""
    dom, *_ = load(browser, base, "/stage/" + STAGE2)
    row = dom.row("group")
    back = [a.get("href") for t, a in dom.elements if t == "a" and a.get("href") == "/group/" + G1]
    check(row and "Nightly import of partner files" in "".join(row) and back,
          "stage: shows its group's description, linking back to the group", repr(dom.rows[:4]))
    check(dom.row("group status") and "running" in "".join(dom.row("group status")),
          "stage: shows its group's status", repr(dom.rows[:4]))
    check("there are more" not in dom.text() and "rel" not in str([a for t, a in dom.elements if t == "a"]),
          "stage: no \"more jobs\" note when the server sent them all", dom.text()[:1500])
    srv.force_more = True
    try:
        dom, *_ = load(browser, base, "/stage/" + STAGE2)
        wider = [a.get("href") for t, a in dom.elements if t == "a" and a.get("rel") == "next"]
        check("Showing the first 3 jobs" in dom.text() and wider == ["/stage/" + STAGE2 + "?limit=1000"],
              "stage: a cut list of jobs says so and links to up to 1000 of them", dom.text()[:1500] + repr(wider))
        srv.api_log.clear()
        dom, *_ = load(browser, base, "/stage/" + STAGE2 + "?limit=1000")
        check(api_reads(srv, "stage/" + STAGE2)[:1] == [{"limit": "1000"}],
              "stage: ?limit=1000 asks the server for 1000 jobs", repr(srv.api_log))
    finally:
        srv.force_more = False


LISTS = {"/groups": "Showing the first 2 groups", "/syncs": "Showing the first 1 synchronizer",
         "/workers": "Showing the first 2 workers", "/locks": "Showing the first 2 locks",
         "/pools": "Showing the first 1 pool and 2 held slots",
         "/schedules": "Showing the first 1 repeating task; there are more: filter by queue",
         "/": "of the first 2 in the registry; there are more"}


def lists_cut(browser, base, srv):
    """A list the server cut at its limit ("more": true) says so; one it
    did not cut says nothing."""
    for force in (False, True):
        srv.force_more = force
        try:
            for path, said in LISTS.items():
                dom, *_ = load(browser, base, path)
                if force:
                    check(said in dom.text(), "%s: a list cut by the server says %r" % (path, said), dom.text()[:2000])
                else:
                    check("there are more" not in dom.text(), "%s: a whole list says nothing of more" % path,
                          dom.text()[:2000])
        finally:
            srv.force_more = False


def live(browser, base, srv):
    """Refresh in place; a banner keeping the last data when the API fails;
    recovery when it answers again."""
    srv.mode = "normal"
    srv.fail_after = 2  # the overview's first read (stats and workers) succeeds, then 503s
    try:
        dom, banner, loaded, _ = load(browser, base, "/?refresh=1", budget=4500)
    finally:
        srv.fail_after = -1
    text = dom.text()
    check(loaded and int(loaded) >= 3, "live: the page read the API again every second (%s reads)" % loaded)
    check(banner is not None and "hidden" not in banner and "The API failed" in text and "503" in text
          and "database unreachable (fixture outage)" in text,
          "live: a banner says the API failed, with its message", text[:2000])
    check("2m 5s" in text and "send_mail" in text, "live: the last data stays on the page under the banner",
          text[:2000])
    check(re.search(r"read at \d", text), "live: the page says when its data was read", text[:500])
    srv.fail_first = 2  # the first read fails, the next one succeeds
    try:
        dom, banner, loaded, _ = load(browser, base, "/?refresh=1", budget=3500)
    finally:
        srv.fail_first = 0
    text = dom.text()
    check(banner is not None and "hidden" in banner and "2m 5s" in text,
          "live: once the API answers again the banner goes and the data shows", text[:2000])


ACTION_SCREENS = {
    "/task/" + T_FAIL: ["Retry", "Delete"],
    "/task/" + T_RUN: ["Cancel", "Stop (slot)", "Delete"],
    "/tasks?queue=imports&status=FAILED": ["Retry all", "Cancel all", "Delete all"],
    "/workers": ["Quiet", "Stop"],
    "/group/" + G1: ["Start"],
    "/pools": ["Stop"],
}


def action_buttons(dom):
    return [a.get("data-action") for t, a in dom.elements if t == "button" and a.get("data-action")]


def buttons(browser, base, srv):
    """The action buttons: none when GET /api/csrf says actions are off;
    on each screen the ones its things allow when on."""
    for allowed in (False, True):
        srv.actions = allowed
        try:
            for path, want in ACTION_SCREENS.items():
                dom, banner, loaded, stderr = load(browser, base, path)
                got = action_buttons(dom)
                name = "actions %s %s" % ("allowed" if allowed else "off", path)
                check(loaded and int(loaded) >= 1, name + ": the page drew", stderr[-1500:])
                if allowed:
                    check(got == want, name + ": the buttons %r" % want, repr(got))
                else:
                    check(not got, name + ": no action button", repr(got))
            if allowed:
                dom, *_ = load(browser, base, "/task/" + T_OK)
                check(action_buttons(dom) == ["Delete"], "actions allowed: a FINISHED task can only be deleted",
                      repr(action_buttons(dom)))
                dom, *_ = load(browser, base, "/tasks")
                check(not action_buttons(dom) and "Filter by queue, status or type" in dom.text(),
                      "actions allowed: no action on every task without a filter", dom.text()[:1000])
                dom, *_ = load(browser, base, "/tasks?status=FAILED&worker=W-1")
                check(not action_buttons(dom) and "take queue, status and type only" in dom.text(),
                      "actions allowed: none on every match while the page's own filters narrow the rows",
                      dom.text()[:1000])
        finally:
            srv.actions = False


def xss(browser, base, srv, what=""):
    """Hostile strings in every field of every reply stay text."""
    srv.mode = "xss"
    try:
        for path in list(PAGES) + ["/task/" + T_FAIL, "/task/" + T_RUN, "/group/" + G1, "/stage/" + STAGE2,
                                   "/stage/" + SYNC_STAGE]:
            dom, banner, loaded, stderr = load(browser, base, path)
            name = "xss%s %s" % (what, path)
            injected = []
            for tag, attrs in dom.elements:
                if tag in ("img", "iframe", "object", "embed"):
                    injected.append(tag)
                if tag == "script" and attrs.get("src") != "/static/app.js":
                    injected.append("script %r" % attrs)
                if tag == "svg" and attrs.get("class") != "chart":
                    injected.append("svg %r" % attrs)
                for k, v in attrs.items():
                    if k.startswith("on") or k == "data-pwned" or (v or "").strip().lower().startswith("javascript:"):
                        injected.append("%s %s=%r" % (tag, k, v))
            check(loaded and int(loaded) >= 1 and banner is not None and "hidden" in banner,
                  name + ": the page drew the hostile replies without an error", dom.text()[:1500])
            check(not injected, name + ": no injected element or attribute in the DOM", "\n".join(injected))
            problems = console_problems(stderr)
            check(not problems, name + ": no script error", "\n".join(problems))
            shown = dom.text().count("<script>document.body")
            check(shown >= 3, name + ": the hostile strings are shown as text (%d times)" % shown,
                  dom.text()[:1500])
    finally:
        srv.mode = "normal"


def screenshots(browser, base, shots):
    for name, path in (("overview", "/"), ("group", "/group/" + G1), ("task", "/task/" + T_FAIL)):
        file = os.path.join(shots, name + ".png")
        if os.path.exists(file):
            os.unlink(file)
        ok, stderr = browser.screenshot(base + path, file)
        check(ok, "screenshot of the %s saved in %s" % (name, file), stderr[-1500:])


if __name__ == "__main__":
    sys.exit(main())
