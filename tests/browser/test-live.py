#!/usr/bin/env python3
"""mtask-web itself in headless Chromium, on data written through the
library. Prints TAP.

Usage: test-live.py SOURCE_ROOT BUILD_DIR SEED MTASK_WEB

The test server is $MTASK_TEST_URI (tools/test starts one) or a devdb this
script starts on a free port and stops. SEED (tests/browser/seed.c) fills a
database of this run's own: a group of three stages of which two are done,
its second stage's jobs in several statuses, a FAILED task with its error,
a running task holding an account lock, a worker in the registry, a pool and
a synchronizer, with hostile markup in every field the pages show. Then two
mtask-web servers: one with --allow-actions, one read-only under
--base-path /mtask.

Chromium loads the screens with --dump-dom: the groups list shows the
description and "2/3 stages", the stage its group's description (linking
back) and its jobs' statuses, the failed task its error; the tasks screen's
text filter finds a task by its status_message or id and its worker filter
the task the worker runs, and its pages of 3 go through every task; no
screen holds an element the hostile strings would have made. The action buttons show on the server that allows actions and on no
screen of the read-only one. Through Chromium's DevTools protocol (a small
WebSocket client below: Python has none) a person's clicks: Retry on the
failed task, "Cancel all" on the tasks screen, whose confirm() must name the
count, and Quiet on the worker, each checked in the API's data after.
Screenshots of the overview, the group and the failed task go to
BUILD_DIR/browser-screenshots/live-*.png.

Skipped (TAP SKIP) when Chromium is not installed.
"""
import base64
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("fixture_browser", os.path.join(HERE, "test-browser.py"))
fb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fb)
Dom, check, results = fb.Dom, fb.check, fb.results

class Proc:
    """A process whose output goes to a file; its start line awaited."""

    def __init__(self, argv, log, env=None):
        self.log = log
        self.out = open(log, "w+")
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, env=env)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("no %r from %s within %d s (exit %s):\n%s" % (pattern, self.p.args[0], timeout,
                                                                          self.p.poll(), self.text()[-3000:]))

    def stop(self):
        """SIGTERM; the exit status (0 expected), or None if it had to be killed."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return None
        self.out.close()
        return self.p.returncode


def get_json(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None


# ---- a WebSocket client, just enough for the DevTools protocol ------------

class WebSocket:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (u.path, u.hostname, u.port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("the DevTools endpoint closed during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("no WebSocket upgrade: %r" % head[:200])

    def send(self, text):
        data = text.encode()
        n = len(data)
        hdr = bytearray([0x81])  # FIN, text
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr.append(0x80 | 126)
            hdr += struct.pack(">H", n)
        else:
            hdr.append(0x80 | 127)
            hdr += struct.pack(">Q", n)
        mask = os.urandom(4)  # a client masks every frame
        hdr += mask
        self.sock.sendall(bytes(hdr) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the DevTools endpoint closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 8:
                raise EOFError("the DevTools endpoint closed the connection")
            if op in (9, 10):  # ping, pong: nothing to say
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self):
        self.sock.close()


class DevTools:
    """One page of a headless Chromium, driven by the DevTools protocol.
    JavaScript dialogs (confirm) are accepted and their messages kept."""

    def __init__(self, exe, build):
        self.profile = tempfile.mkdtemp(prefix="mtask-cdp-", dir=build)
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "--user-data-dir=" + self.profile, "--window-size=1280,1000",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(open(port_file).read().split("\n")[0])
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=30) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        self.next_id = 0
        self.dialogs = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _send(self, method, params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def _event(self, m):
        if m.get("method") == "Page.javascriptDialogOpening":
            self.dialogs.append(m["params"].get("message", ""))
            self._send("Page.handleJavaScriptDialog", {"accept": True})

    def call(self, method, **params):
        want = self._send(method, params)
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self._event(m)

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"].get("text")))
        return r.get("result", {}).get("value")

    def wait(self, expression, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        return None

    def goto(self, url):
        self.call("Page.navigate", url=url)
        return self.wait("document.body && Number(document.body.getAttribute('data-loaded') || 0) >= 1")

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


# ---- the checks ----------------------------------------------------------

def injected(dom, script_src):
    """What hostile strings would have made: elements, handlers, a marker."""
    found = []
    for tag, attrs in dom.elements:
        if tag in ("img", "iframe", "object", "embed"):
            found.append(tag)
        if tag == "script" and attrs.get("src") != script_src:
            found.append("script %r" % attrs)
        if tag == "svg" and attrs.get("class") != "chart":
            found.append("svg %r" % attrs)
        for k, v in attrs.items():
            if k.startswith("on") or k == "data-pwned" or (v or "").strip().lower().startswith("javascript:"):
                found.append("%s %s=%r" % (tag, k, v))
    return found


def buttons(dom):
    return [a.get("data-action") for t, a in dom.elements if t == "button" and a.get("data-action")]


def screens(browser, base, ids, prefix, allowed):
    """Each screen of one server: drawn, no error, no injected element, the
    hostile strings shown as text; action buttons as the server allows."""
    script = prefix + "/static/app.js"
    paths = ["/", "/tasks", "/groups", "/group/" + ids["group"], "/task/" + ids["failed"],
             "/task/" + ids["single"], "/task/" + ids["running"], "/syncs", "/workers", "/locks", "/pools",
             "/schedules"]
    seen_buttons = {}
    for path in paths:
        dom, banner, loaded, stderr = fb.load(browser, base, prefix + path)
        name = "live%s %s" % (" " + prefix if prefix else "", path)
        text = dom.text()
        check(loaded and int(loaded) >= 1 and banner is not None and "hidden" in banner,
              name + ": drawn from the server's API without an error", text[:1500] + stderr[-1500:])
        bad = injected(dom, script)
        check(not bad, name + ": no injected element or attribute in the DOM", "\n".join(bad))
        problems = fb.console_problems(stderr)
        check(not problems, name + ": no script error, nothing refused by the policy", "\n".join(problems))
        if path not in ("/", "/schedules"):
            check("<script>document.body" in text, name + ": the hostile strings are shown as text", text[:1500])
        links = [a.get("href") for t, a in dom.elements if t == "a" and a.get("href")]
        off = [l for l in links if not l.startswith(prefix + "/")]
        check(not off, name + ": every link is under '%s/'" % prefix, repr(off))
        seen_buttons[path] = buttons(dom)
    if allowed:
        want = {"/task/" + ids["failed"]: ["Retry", "Delete"], "/task/" + ids["running"]: ["Cancel", "Delete"],
                "/workers": ["Quiet", "Stop"], "/group/" + ids["group"]: ["Start"], "/syncs": ["Start"]}
        for path, w in want.items():
            check(seen_buttons[path] == w, "live %s: the action buttons %r" % (path, w), repr(seen_buttons[path]))
    else:
        shown = {p: b for p, b in seen_buttons.items() if b}
        check(not shown, "live%s: no action button anywhere on a read-only server" % (" " + prefix), repr(shown))


def content(browser, base, ids):
    """What a person sees on the seeded data."""
    dom, *_ = fb.load(browser, base, "/groups")
    row = dom.row(ids["group"])
    check(row and "Nightly import of partner files" in "".join(row) and "2/3 stages" in row,
          "live groups: the group's row shows its description and 2/3 stages", repr(dom.rows))
    dom, *_ = fb.load(browser, base, "/group/" + ids["group"])
    text = dom.text()
    check("Nightly import of partner files" in text and "2 / 2" in text and "3 / 3" in text and "0 / 1" in text,
          "live group: its stages, done of total", text[:2000])
    status, reply = get_json(base + "/api/stage/" + ids["stage"])
    check(status == 200 and (reply or {}).get("group", {}).get("_id", {}).get("$oid") == ids["group"],
          "live /api/stage/ID: the server serves a group's stage with its group", "%r %r" % (status, reply))
    dom, *_ = fb.load(browser, base, "/stage/" + ids["stage"])
    failed, finished = dom.row(ids["failed"]), dom.row(ids["finished"])
    check(failed and finished and "FAILED" in "".join(failed) and "FINISHED" in "".join(finished)
          and "CANCELLED" in dom.text(),
          "live stage: each job's row shows its status", repr(dom.rows))
    row = dom.row("group")
    back = [a.get("href") for t, a in dom.elements if t == "a" and a.get("href") == "/group/" + ids["group"]]
    check(row and "Nightly import of partner files" in "".join(row) and back,
          "live stage: shows its group's description, linking back to the group", repr(dom.rows[:4]))
    tasks_filters(browser, base, ids)
    dom, *_ = fb.load(browser, base, "/task/" + ids["failed"])
    box = dom.by_id("task-error")
    text = dom.text()
    check(box is not None and "partner-a.csv: line 17 has 4 columns, expected 6" in text and "FAILED" in text,
          "live task: a failed task shows its error", text[:2000])
    dom, *_ = fb.load(browser, base, "/workers")
    check("W-1" in dom.text() and "running" in dom.text() and ids["running"] in dom.text(),
          "live workers: the worker, its state and the task it runs", dom.text()[:2000])
    dom, *_ = fb.load(browser, base, "/locks")
    check("partner-a" in dom.text() and "held" in dom.text(), "live locks: the account lock, held",
          dom.text()[:2000])


def task_ids(dom):
    return [r[0].strip() for r in dom.rows if r and re.fullmatch(r"[0-9a-f]{24}", r[0].strip())]


def tasks_filters(browser, base, ids):
    """The tasks screen's text and worker filters and its pages, answered by
    the server."""
    # The failed job's status_message is "read 16 of 240 lines" (and markup):
    # the text filter, in another case, finds it and only it, though six
    # tasks are newer, on a page of one.
    dom, *_ = fb.load(browser, base, "/tasks?" + urllib.parse.urlencode({"q": "READ 16 of", "size": 1}))
    links = [a.get("rel") for t, a in dom.elements if t == "a" and a.get("rel")]
    check(task_ids(dom) == [ids["failed"]] and links == [],
          "live tasks: the text filter finds an older task by its status_message, on one page",
          repr(task_ids(dom)) + repr(links) + dom.text()[:1500])
    dom, *_ = fb.load(browser, base, "/tasks?" + urllib.parse.urlencode({"q": ids["single"]}))
    check(task_ids(dom) == [ids["single"]], "live tasks: an id in the text filter finds that task",
          repr(task_ids(dom)))
    dom, *_ = fb.load(browser, base, "/tasks?" + urllib.parse.urlencode({"worker": ids["worker"]}))
    check(task_ids(dom) == [ids["running"]], "live tasks: the worker filter finds the task the worker runs",
          repr(task_ids(dom)) + dom.text()[:1500])
    # Eight tasks, three a page: older pages while the server says more.
    seen, links = [], []
    for page in (1, 2, 3):
        dom, *_ = fb.load(browser, base, "/tasks?size=3&page=%d" % page)
        seen += task_ids(dom)
        links.append([a.get("rel") for t, a in dom.elements if t == "a" and a.get("rel")])
    _, reply = get_json(base + "/api/tasks?limit=100")
    every = [t["_id"]["$oid"] for t in (reply or {}).get("tasks", [])]
    check(len(every) == 8 and seen == every and links == [["next"], ["prev", "next"], ["prev"]],
          "live tasks: pages of 3 go through all 8 tasks newest first, an older page only while there is one",
          "%r\n%r\n%r" % (seen, every, links))


def clicks(exe, build, base, ids):
    """A person's clicks, through the DevTools protocol."""
    try:
        cdp = DevTools(exe, build)
    except Exception as e:  # noqa: BLE001 -- said in the TAP line
        check(False, "live clicks: Chromium's DevTools protocol answers", str(e))
        return
    try:
        clean = ("document.querySelectorAll('img,iframe,object,embed').length === 0 && "
                 "!document.body.hasAttribute('data-pwned') && document.scripts.length === 1")
        # Retry on the failed task: the notice says so, the task is CREATED.
        cdp.goto(base + "/task/" + ids["single"])
        ok = cdp.wait("!!document.querySelector('button[data-action=\"Retry\"]')")
        check(ok, "live click: the failed task shows Retry")
        if ok:
            cdp.eval("document.querySelector('button[data-action=\"Retry\"]').click()")
            said = cdp.wait("(n => !n.hidden && n.textContent)(document.getElementById('notice'))")
            _, reply = get_json(base + "/api/task/" + ids["single"])
            check(said and "1 done" in said and reply and reply["task"]["status"] == "CREATED",
                  "live click: Retry puts the task back to CREATED and says so", "%r %r" % (said, reply))
            check(cdp.wait("document.querySelector('.status').textContent === 'CREATED'"),
                  "live click: the page reads the task again and shows it CREATED")
        check(cdp.eval(clean), "live click: no injected element on the task page")
        # "Cancel all" CREATED tasks of the mail queue: confirm() names the count.
        queue = "mail" + fb_hostile_short()
        cdp.dialogs.clear()
        cdp.goto(base + "/tasks?" + urllib.parse.urlencode({"queue": queue, "status": "CREATED"}))
        ok = cdp.wait("!!document.querySelector('button[data-action=\"Cancel all\"]')")
        check(ok, "live click: the filtered tasks screen shows Cancel all")
        if ok:
            cdp.eval("document.querySelector('button[data-action=\"Cancel all\"]').click()")
            said = cdp.wait("(n => !n.hidden && n.textContent)(document.getElementById('notice'))")
            check(cdp.dialogs == ["Cancel 1 CREATED task of queue '%s'?" % queue],
                  "live click: Cancel all asks confirm() with the count and the filter", repr(cdp.dialogs))
            _, reply = get_json(base + "/api/task/" + ids["single"])
            check(said and "1 done" in said and reply and reply["task"]["status"] == "CANCELLED",
                  "live click: Cancel all cancels the matching task", "%r %r" % (said, reply))
        check(cdp.eval(clean), "live click: no injected element on the tasks page")
        # Quiet on the worker: the registry document gets the command.
        cdp.goto(base + "/workers")
        ok = cdp.wait("!!document.querySelector('button[data-action=\"Quiet\"]')")
        check(ok, "live click: the running worker shows Quiet")
        if ok:
            cdp.eval("document.querySelector('button[data-action=\"Quiet\"]').click()")
            said = cdp.wait("(n => !n.hidden && n.textContent)(document.getElementById('notice'))")
            _, reply = get_json(base + "/api/workers")
            worker = next((w for w in (reply or {}).get("workers", []) if w.get("_id") == ids["worker"]), {})
            check(said and "quiet" in said and worker.get("command") == "quiet",
                  "live click: Quiet writes the command into the worker's registry document",
                  "%r %r" % (said, worker))
        check(cdp.eval(clean), "live click: no injected element on the workers page")
    except Exception as e:  # noqa: BLE001 -- said in the TAP line
        check(False, "live clicks: the DevTools session went through", repr(e))
    finally:
        cdp.close()


def fb_hostile_short():
    # The HOSTILE_NAME of seed.c.
    return "\"><img/src=x/onerror=document.body.dataset.pwned=1><script>document.body.dataset.pwned=2</script>"


def screenshots(browser, base, ids, shots):
    for name, path in (("overview", "/"), ("group", "/group/" + ids["group"]), ("task", "/task/" + ids["failed"])):
        file = os.path.join(shots, "live-" + name + ".png")
        if os.path.exists(file):
            os.unlink(file)
        ok, stderr = browser.screenshot(base + path, file)
        check(ok, "live screenshot of the %s saved in %s" % (name, file), stderr[-1500:])


def main():
    if len(sys.argv) != 5:
        print("usage: test-live.py SOURCE_ROOT BUILD_DIR SEED MTASK_WEB", file=sys.stderr)
        return 2
    root, build, seed, web = (os.path.abspath(a) for a in sys.argv[1:])
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("1..0 # SKIP chromium is not installed (tools/setup installs it)")
        return 0
    shots = os.path.join(build, "browser-screenshots")
    os.makedirs(shots, exist_ok=True)
    logs = tempfile.mkdtemp(prefix="mtask-live-", dir=build)
    procs, browser = [], None
    status = 1
    try:
        uri = os.environ.get("MTASK_TEST_URI")
        if not uri:
            devdb = Proc([os.environ.get("MTASK_DEVDB", os.path.join(root, "tools", "devdb")), "--port", "0",
                          "--memory"], os.path.join(logs, "devdb.log"))
            procs.append(("devdb", devdb))
            uri = devdb.wait_for(r"READY (mongodb://\S+)", 120).group(1)
        db = "browser_live_%d" % os.getpid()
        out = subprocess.run([seed, uri, db], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("the seed failed (exit %d): %s" % (out.returncode, out.stderr[-3000:]))
        ids = json.loads(out.stdout)
        servers = {}
        for label, extra in (("actions", ["--allow-actions"]), ("prefix", ["--base-path", "/mtask"])):
            p = Proc([web, "--uri", uri, "--db", db, "--listen", "127.0.0.1:0"] + extra,
                     os.path.join(logs, "web-%s.log" % label))
            procs.append(("mtask-web " + label, p))
            port = int(p.wait_for(r"listening on port (\d+)", 60).group(1))
            servers[label] = "http://127.0.0.1:%d" % port
        browser = fb.Browser(exe, build)
        content(browser, servers["actions"], ids)
        screens(browser, servers["actions"], ids, "", True)
        screens(browser, servers["prefix"], ids, "/mtask", False)
        dom, *_ = fb.load(browser, servers["prefix"], "/mtask/groups")
        row = dom.row(ids["group"])
        check(row and "2/3 stages" in row, "live /mtask/groups: a screen renders under --base-path", repr(dom.rows))
        screenshots(browser, servers["actions"], ids, shots)
        clicks(exe, build, servers["actions"], ids)
        status = 0
    except Exception as e:  # noqa: BLE001 -- said in the TAP line
        check(False, "live: the servers started and the seed ran", repr(e))
    finally:
        if browser:
            browser.close()
        for label, p in reversed(procs):
            code = p.stop()
            if label.startswith("mtask-web"):
                check(code == 0, "%s exits 0 at SIGTERM, no leak" % label, p.text()[-3000:])
        shutil.rmtree(logs, ignore_errors=True)
    print("1..%d" % len(results))
    failed = 0
    for i, (ok, name, diag) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            for line in diag.splitlines()[:40]:
                print("# " + line)
    return 1 if failed or status else 0


if __name__ == "__main__":
    sys.exit(main())
