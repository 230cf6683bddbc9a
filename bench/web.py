#!/usr/bin/env python3
"""bench/web.py: how fast mtask-web answers on a busy deployment's data.

Builds the plain build (as bench/run does), starts one tools/devdb on a free
port, seeds it with bench-web-seed (TASKS tasks, GROUPS staged groups,
WORKERS registry documents), starts mtask-web --listen 127.0.0.1:0 on it,
and calls every API the pages call, and /metrics, CALLS times each over one
keep-alive connection: the median and the 90th percentile. Then mtask-web's
resident memory (VmRSS now, VmHWM its peak) and the page weight (index.html,
app.js and app.css as served). Prints a table and, as its last line, one
JSON object with every figure. docs/benchmarks.md says what each one means.
"""
import argparse
import http.client
import importlib.machinery
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/run's process handling and set-up, shared rather than copied.
common = importlib.machinery.SourceFileLoader("bench_run", os.path.join(HERE, "run")).load_module()
BenchError, Children, run, say = common.BenchError, common.Children, common.run, common.say

# The dashboard's targets.
API_MEDIAN_MS = 300
METRICS_MEDIAN_MS = 500
RSS_MB = 30
PAGE_KB = 200


def parse_args():
    p = argparse.ArgumentParser(prog="bench/web.py", description="mtask-web's answer times, memory and page weight.")
    p.add_argument("--tasks", type=int, default=50000, help="tasks in the database; default 50000")
    p.add_argument("--groups", type=int, default=200, help="staged groups (6 tasks each, of TASKS); default 200")
    p.add_argument("--workers", type=int, default=20, help="worker registry documents; default 20")
    p.add_argument("--calls", type=int, default=20, help="calls of each API; default 20")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs)")
    args = p.parse_args()
    for name in ("tasks", "calls"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be 1 or more")
    for name in ("groups", "workers"):
        if getattr(args, name) < 0:
            p.error(f"--{name} must be 0 or more")
    if args.groups * 6 > args.tasks:
        p.error(f"--groups {args.groups} make {args.groups * 6} tasks, more than --tasks")
    return args


def build(builddir):
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        run(["meson", "setup", builddir], cwd=ROOT)
    out = run(["ninja", "-C", builddir])
    with open(os.path.join(builddir, "meson-info", "intro-buildoptions.json")) as f:
        options = {o["name"]: o["value"] for o in json.load(f)}
    if options.get("b_sanitize") not in (None, "none"):
        raise BenchError(f"{builddir} is built with sanitizers; give a plain build (MTASK_BUILDDIR, default build/)")
    return options.get("buildtype"), out


def start_web(children, builddir, tmp, uri, db):
    """Starts mtask-web on a free port; returns it and its port, read from
    its start line on stderr."""
    err_path = os.path.join(tmp, "mtask-web.log")
    err = open(err_path, "w+")
    proc = children.start([os.path.join(builddir, "web", "mtask-web"), "--db", db, "--uri", uri,
                           "--listen", "127.0.0.1:0"], stdout=subprocess_devnull(), stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        err.seek(0)
        m = re.search(r"listening on port (\d+)", err.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    err.seek(0)
    raise BenchError(f"mtask-web did not start:\n{err.read()[-2000:]}")


def subprocess_devnull():
    return open(os.devnull, "w")


def status_kb(pid):
    figures = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(line.split()[1])
    return figures


class Client:
    """One keep-alive HTTP connection to mtask-web."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path):
        t0 = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, (time.perf_counter() - t0) * 1000.0


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank
    return ordered[int(rank) - 1]


def first_id(client, path, list_key):
    status, body, _ = client.get(path)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
    items = json.loads(body).get(list_key) or []
    if not items:
        raise BenchError(f"GET {path} listed no {list_key}")
    ident = items[0].get("_id", items[0].get("id"))
    return ident["$oid"] if isinstance(ident, dict) else str(ident)


def measure(args, client):
    task = first_id(client, "/api/tasks?limit=1", "tasks")
    group = first_id(client, "/api/groups", "groups") if args.groups else None
    stage = None
    if group:
        # The stage's id as the group's reply names it; else group:number.
        status, body, _ = client.get(f"/api/group/{group}?stages=1")
        stages = json.loads(body).get("stages") or [] if status == 200 else []
        ident = stages[0].get("_id") if stages and isinstance(stages[0], dict) else None
        stage = (ident["$oid"] if isinstance(ident, dict) and "$oid" in ident else
                 str(ident) if ident is not None else f"{group}:1")
    calls = [
        ("overview", "/api/overview"),
        ("workers", "/api/workers"),
        ("tasks", "/api/tasks"),
        ("tasks?status=FAILED", "/api/tasks?status=FAILED"),
        ("tasks?queue=q3", "/api/tasks?queue=q3"),
        ("tasks?q=globex", "/api/tasks?" + urllib.parse.urlencode({"q": "globex"})),
        ("task/ID", f"/api/task/{task}"),
        ("groups", "/api/groups"),
        ("group/ID", f"/api/group/{group}" if group else None),
        ("group/ID?stages=1", f"/api/group/{group}?stages=1" if group else None),
        ("stage/ID", f"/api/stage/{urllib.parse.quote(stage, safe='')}" if stage else None),
        ("syncs", "/api/syncs"),
        ("locks", "/api/locks"),
        ("slots", "/api/slots"),
        ("schedules", "/api/schedules"),
        ("metrics", "/metrics"),
    ]
    rows = {}
    for name, path in calls:
        if path is None:
            rows[name] = {"na": "no group seeded (--groups 0)"}
            continue
        status, body, _ = client.get(path)  # the first call: not timed
        if status != 200:
            reason = body.decode(errors="replace")[:160]
            rows[name] = {"na": f"{status}: {reason}", "path": path}
            continue
        times = []
        for _ in range(args.calls):
            status, body, ms = client.get(path)
            if status != 200:
                raise BenchError(f"GET {path} answered {status} after answering 200")
            times.append(ms)
        rows[name] = {"path": path, "median_ms": round(percentile(times, 50), 2),
                      "p90_ms": round(percentile(times, 90), 2), "max_ms": round(max(times), 2), "bytes": len(body)}
    weight = {}
    for name, path in (("index.html", "/"), ("app.js", "/static/app.js"), ("app.css", "/static/app.css")):
        status, body, _ = client.get(path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}")
        weight[name] = len(body)
    return rows, weight


def main():
    args = parse_args()
    builddir = os.path.abspath(os.environ.get("MTASK_BUILDDIR", os.path.join(ROOT, "build")))
    children = Children()
    tmp = tempfile.mkdtemp(prefix="mtask-bench-web-")
    failed = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        info = {"source": common.source_version(), "machine": common.machine()}
        info["buildtype"], _ = build(builddir)
        _, uri = common.start_devdb(children, tmp)
        db = "bench_web"
        say(f"bench/web: seeding {args.tasks} tasks, {args.groups} groups, {args.workers} workers")
        t0 = time.monotonic()
        seeded = common.run_json([os.path.join(builddir, "bench", "bench-web-seed"), uri, db, str(args.tasks),
                                  str(args.groups), str(args.workers)], timeout=1800)
        seeded["seconds"] = round(time.monotonic() - t0, 1)
        web, port = start_web(children, builddir, tmp, uri, db)
        info["load_start"] = common.load()
        client = Client(port)
        rows, weight = measure(args, client)
        memory = status_kb(web.pid)
        info["load_end"] = common.load()
        results = {"seeded": seeded, "calls": rows, "page_bytes": weight, "page_kb": round(sum(weight.values()) / 1024, 1),
                   "rss_kb": memory.get("VmRSS"), "peak_rss_kb": memory.get("VmHWM")}
        targets = {}
        for name, row in rows.items():
            if "median_ms" in row:
                limit = METRICS_MEDIAN_MS if name == "metrics" else API_MEDIAN_MS
                targets[f"{name}_median_under_{limit}ms"] = row["median_ms"] < limit
        targets[f"peak_rss_under_{RSS_MB}MB"] = results["peak_rss_kb"] < RSS_MB * 1024
        targets[f"page_weight_under_{PAGE_KB}KB"] = results["page_kb"] < PAGE_KB
        print(table(args, info, results, targets))
        print(json.dumps({"bench": info, "params": {k: v for k, v in vars(args).items() if k != "keep_tmp"},
                          "results": results, "targets": targets}))
    except BenchError as e:
        say(f"bench/web: {e}")
        failed = True
    except KeyboardInterrupt:
        say("bench/web: interrupted")
        failed = True
    finally:
        children.stop_all()
        if args.keep_tmp or failed:
            say(f"bench/web: logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def table(args, info, r, targets):
    out = []
    w = out.append
    s = r["seeded"]
    w(f"mtask-web benchmark ({info['source']}, {info['buildtype']} build); server: tools/devdb --memory on 127.0.0.1")
    w(f"machine: {info['machine']['nproc']} CPUs, {info['machine']['cpu']}; "
      f"load average at start {' '.join(map(str, info['load_start']))}, at end {' '.join(map(str, info['load_end']))}")
    w(f"data: {s['tasks']} tasks ({s['group_tasks']} in {s['groups']} groups), {s['workers']} workers "
      f"(seeded in {s['seconds']} s); {args.calls} calls each on one keep-alive connection")
    w("")
    w(f"  {'call':<24}{'median ms':>10}{'p90 ms':>10}{'max ms':>10}{'bytes':>10}")
    for name, row in r["calls"].items():
        if "na" in row:
            w(f"  {name:<24}n/a: {row['na']}")
            continue
        w(f"  {name:<24}{row['median_ms']:10.1f}{row['p90_ms']:10.1f}{row['max_ms']:10.1f}{row['bytes']:10d}")
    w("")
    w(f"  mtask-web resident memory: {r['rss_kb'] / 1024:.1f} MB now, {r['peak_rss_kb'] / 1024:.1f} MB at its peak")
    w(f"  page weight: {r['page_kb']} KB (" + ", ".join(f"{k} {v} B" for k, v in r["page_bytes"].items()) + ")")
    w("")
    w("targets")
    for key, met in targets.items():
        w(f"  {key:<44}{'met' if met else 'MISSED'}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
