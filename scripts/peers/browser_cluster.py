#!/usr/bin/env python3
"""Two `callsctl serve` nodes of a cluster on one PostgreSQL; browsers that open the page on the wrong node are
redirected to the node of the call, inside a private network namespace.

  PostgreSQL  Debian's server, started here as the postgres user on 127.0.0.1 (the cluster's shared database)
  n1, n2      callsctl serve --cluster-db ... with their own ports, node ids and public URLs
  alice       headless Chromium opens the page on n1 and starts the call there (fake microphone: 440 Hz)
  bob         headless Firefox ESR opens the page on n2 (Firefox's fake tone at 660 Hz, PulseAudio null sink)
  carol       headless Chromium opens the page on n2 (880 Hz)

Checks: bob's and carol's pages each follow one `redirect` to node n1 and never reach a call on n2; alice's page
follows none; each of the three hears the two other tones (so all three are in the one call on n1); n1's admin
API listed three participants and n2's listed the call as n1's.

Loopback only: everything runs in `unshare -n` with just `lo` up. Every wait is bounded (--timeout).
Exit: 0 pass, 1 fail, 3 could not run (no chromium, firefox-esr, pulseaudio, postgresql or namespace). Prints one
JSON document. Needs root (`unshare -n`, and to run PostgreSQL as its own user). Stdlib only.
"""
import argparse
import glob
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from browser_echo import CHANNEL, Receiver, chromium_command, fail_early, reexec_in_namespace, write_tone  # noqa: E402
from browser_firefox import firefox_command, identify, start_pulseaudio  # noqa: E402
from browser_group import finish  # noqa: E402

ALICE_HZ, BOB_HZ, CAROL_HZ = 440, 660, 880
PG_PORT = 25432
NODES = {"n1": (18101, 18401), "n2": (18102, 18402)}
ADMIN_KEY = "cluster-browser-admin-key-0123456789"


def postgres_bin():
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return os.path.dirname(versions[-1]) if versions else None


def as_postgres(cmd):
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + cmd


def start_postgres(work, port=PG_PORT):
    """initdb and postgres on 127.0.0.1:`port` as the postgres user; returns (process, url) or (process, None)."""
    bindir = postgres_bin()
    pg = os.path.join(work, "pg")
    os.makedirs(pg, exist_ok=True)
    with open(os.path.join(pg, "pw"), "w") as f:
        f.write("cluster-pw")
    subprocess.run(["chown", "-R", "postgres:postgres", pg], check=True)
    log = open(os.path.join(work, "postgres.log"), "w")
    subprocess.run(as_postgres([os.path.join(bindir, "initdb"), "-D", os.path.join(pg, "data"), "-U", "callsctl",
                                "--pwfile=" + os.path.join(pg, "pw"), "--auth-host=scram-sha-256", "--auth-local=trust",
                                "--no-sync", "--locale=C"]), stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
    proc = subprocess.Popen(as_postgres([os.path.join(bindir, "postgres"), "-D", os.path.join(pg, "data"), "-h", "127.0.0.1",
                                         "-p", str(port), "-k", pg, "-c", "fsync=off"]),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = dict(os.environ, PGPASSWORD="cluster-pw", PGCONNECT_TIMEOUT="3")
    psql = os.path.join(bindir, "psql")
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        r = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "callsctl", "-d", "postgres", "-Atqc",
                            "CREATE DATABASE calls"], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return proc, "postgres://callsctl:cluster-pw@127.0.0.1:%d/calls?sslmode=disable" % port
        time.sleep(0.3)
    return proc, None


def start_node(args, work, name, db_url, secret, key):
    api, rtc = NODES[name]
    cmd = [args.callsctl, "serve", "--data-dir", os.path.join(work, "data-" + name),
           "--api-listen", "127.0.0.1:%d" % api, "--rtc-listen", "127.0.0.1:%d" % rtc, "--cluster-db", db_url,
           "--cluster-node-id", name, "--cluster-public-url", "http://127.0.0.1:%d" % api,
           "--token-secret-file", secret, "--admin-key-file", key]
    log = open(os.path.join(work, "serve-%s.log" % name), "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=dict(os.environ, NO_COLOR="1"))
    deadline = time.time() + 30
    ready = False
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("data directory:"):
            ready = True
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, ready


def admin_calls(port):
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/calls" % port, headers={"Authorization": "Bearer " + ADMIN_KEY})
    try:
        return json.loads(urllib.request.urlopen(req, timeout=5).read())
    except (OSError, ValueError) as e:
        return {"error": str(e)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--timeout", type=float, default=150)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--firefox", default=shutil.which("firefox-esr") or "/usr/bin/firefox-esr")
    ap.add_argument("--pulseaudio", default=shutil.which("pulseaudio") or "/usr/bin/pulseaudio")
    ap.add_argument("--keep", help="keep logs (and the profiles) in this folder")
    args = ap.parse_args()

    code = reexec_in_namespace()
    if code is not None:
        return code
    for name, path in (("chromium", args.chromium), ("firefox-esr", args.firefox), ("pulseaudio", args.pulseaudio)):
        if not os.path.exists(path):
            return fail_early("%s not found (scripts/install-deps.sh --test installs it)" % name)
    if postgres_bin() is None:
        return fail_early("PostgreSQL is not installed (scripts/install-deps.sh --test installs it)")
    if not os.path.exists(args.callsctl):
        return fail_early("callsctl binary not found at %s; build it or pass --callsctl" % args.callsctl)
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-cluster-browser-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)  # the postgres user reaches its folder inside
    summary = {"ok": False, "work": work, "checks": []}
    code = run(args, summary, work)
    if not summary["ok"] and "error" not in summary:
        summary["error"] = "failed: " + ", ".join(c["check"] for c in summary["checks"] if not c["ok"])
    print(json.dumps(summary, indent=2, default=str))
    return code


def run(args, summary, work):
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    report_url = "http://127.0.0.1:%d/report" % receiver.server_address[1]
    pg, pulse, nodes, browsers = None, None, {}, []
    try:
        pg, db_url = start_postgres(work)
        if db_url is None:
            summary["error"] = "PostgreSQL did not start; see %s/postgres.log" % work
            return finish(summary, 3)
        secret = os.path.join(work, "token-secret")
        with open(secret, "w") as f:
            f.write("YnJvd3Nlci1jbHVzdGVyLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk=\n")
        key = os.path.join(work, "admin-key")
        with open(key, "w") as f:
            f.write(ADMIN_KEY + "\n")
        os.chmod(secret, 0o600)
        os.chmod(key, 0o600)
        for name in NODES:
            proc, ready = start_node(args, work, name, db_url, secret, key)
            nodes[name] = proc
            if not ready:
                summary["error"] = "node %s did not start; see %s/serve-%s.log" % (name, work, name)
                return finish(summary, 1)
        pulse, pulse_server = start_pulseaudio(args.pulseaudio, work)
        if pulse_server is None:
            summary["error"] = "pulseaudio did not open its socket; see %s/pulseaudio.log" % work
            return finish(summary, 3)

        def token(user):
            return subprocess.run(
                [args.callsctl, "token", "create", "--token-secret-file", secret, "--channel", CHANNEL, "--user", user,
                 "--ttl", "600"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()

        def page_url(node, user, own, others):
            return ("http://127.0.0.1:%d/?token=%s&autotest=%g&peers=2&expectSpeakers=2&ownHz=%d&expectHz=%s&report=%s"
                    % (NODES[node][0], token(user), args.seconds, own, ",".join(str(h) for h in others), report_url))

        tone = os.path.join(work, "alice.wav")
        write_tone(tone, hz=ALICE_HZ, seconds=10)
        browsers.append(subprocess.Popen(
            chromium_command(args.chromium, tone, os.path.join(work, "profile-alice"),
                             page_url("n1", "alice", ALICE_HZ, [BOB_HZ, CAROL_HZ])),
            stdout=open(os.path.join(work, "chromium-alice.log"), "w"), stderr=subprocess.STDOUT, start_new_session=True))
        # The call starts on n1 with alice; then the others open the page on n2.
        deadline = time.time() + 30
        while time.time() < deadline:
            calls = admin_calls(NODES["n1"][0]).get("calls") or []
            if any(c.get("channel") == CHANNEL for c in calls):
                break
            time.sleep(0.2)
        home = os.path.join(work, "firefox-home")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, HOME=home, MOZ_CRASHREPORTER_DISABLE="1", MOZ_DISABLE_AUTO_SAFE_MODE="1",
                   PULSE_SERVER=pulse_server, XDG_RUNTIME_DIR=os.path.join(work, "pulse", "run"))
        browsers.append(subprocess.Popen(
            firefox_command(args.firefox, os.path.join(work, "profile-bob"), page_url("n2", "bob", BOB_HZ, [ALICE_HZ, CAROL_HZ]),
                            BOB_HZ), env=env,
            stdout=open(os.path.join(work, "firefox-bob.log"), "w"), stderr=subprocess.STDOUT, start_new_session=True))
        tone = os.path.join(work, "carol.wav")
        write_tone(tone, hz=CAROL_HZ, seconds=10)
        browsers.append(subprocess.Popen(
            chromium_command(args.chromium, tone, os.path.join(work, "profile-carol"),
                             page_url("n2", "carol", CAROL_HZ, [ALICE_HZ, BOB_HZ])),
            stdout=open(os.path.join(work, "chromium-carol.log"), "w"), stderr=subprocess.STDOUT, start_new_session=True))

        seen = {"n1": 0, "n2owner": None}
        deadline = time.time() + args.timeout
        while len(Receiver.reports) < 3 and time.time() < deadline:
            for c in admin_calls(NODES["n1"][0]).get("calls") or []:
                if c.get("channel") == CHANNEL:
                    seen["n1"] = max(seen["n1"], c.get("participantCount") or 0)
            for c in admin_calls(NODES["n2"][0]).get("calls") or []:
                if c.get("channel") == CHANNEL:
                    seen["n2owner"] = c.get("node")
            Receiver.event.wait(1)
            Receiver.event.clear()
        pages = identify(Receiver.reports)
        summary["pages"] = {u: {k: p.get(k) for k in ("ok", "error", "stage", "redirects", "node", "heard", "serverErrors")}
                            for u, p in pages.items()}
        summary["adminSeen"] = seen
        checks = summary["checks"]

        def check(name, ok, detail):
            checks.append({"check": name, "ok": bool(ok), "detail": detail})

        tones = {"alice": ALICE_HZ, "bob": BOB_HZ, "carol": CAROL_HZ}
        check("three pages reported", len(pages) == 3, sorted(pages))
        for user, page in pages.items():
            expected = 0 if user == "alice" else 1
            check("%s followed %d redirect(s)" % (user, expected), (page.get("redirects") or 0) == expected, page.get("redirects"))
            if expected:
                check("%s was sent to node n1" % user, page.get("node") == "n1", page.get("node"))
            heard = {h.get("user"): h.get("hz") for h in (page.get("heard") or {}).values() if h.get("participant")}
            for other, hz in tones.items():
                if other != user:
                    got = heard.get(other)
                    check("%s hears %s's %d Hz" % (user, other, hz), got is not None and abs(got - hz) <= 25, got)
            check("%s page verdict" % user, page.get("ok"), page.get("error"))
        check("n1's admin API listed the call with 3 participants", seen["n1"] == 3, seen["n1"])
        check("n2's admin API listed the call as n1's", seen["n2owner"] == "n1", seen["n2owner"])
        return finish(summary, 0 if all(c["ok"] for c in checks) else 1)
    finally:
        for b in browsers:
            try:
                os.killpg(b.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            b.wait()
        for proc in nodes.values():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for p in (pulse, pg):
            if p is not None:
                try:
                    os.killpg(p.pid, signal.SIGINT if p is pg else signal.SIGTERM)
                    p.wait(15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
        receiver.shutdown()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
