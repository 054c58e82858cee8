#!/usr/bin/env python3
"""One headless Chromium participant in a call of 200 scripted participants on `callsctl serve`, inside a private
network namespace.

The 200 are the project's own WebRTC client, joined through the server's signaling by `callsctl loadtest` (ICE,
DTLS-SRTP, real Opus frames): two of them speak, one a 440 Hz tone and one 550 Hz, with RFC 6464 audio levels;
the other 198 join muted and listen. Then Chromium joins the same channel's call through the page at / (its own
fake microphone plays 880 Hz) and must hear both tones in its audio slots, with the speakers map naming the two
speakers; it must not hear itself. The load test's own report must show every join succeeded and nobody was asked
to renegotiate (a join costs the others nothing).

Exit: 0 pass, 1 fail, 3 could not run (no chromium, no namespace). Prints one JSON document.
Needs root for `unshare -n` (CI runs as root). Stdlib only.
"""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_echo import (CHANNEL, Receiver, chromium_command, fail_early, reexec_in_namespace,  # noqa: E402
                          start_serve, stop_processes, write_tone)
from browser_group import finish  # noqa: E402

TONES = [440, 550]  # the load test's first two speakers (its Opus fixture: speaker i plays tone i)
OWN_HZ = 880


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--participants", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=4, help="audio measuring window once both tones are heard")
    ap.add_argument("--timeout", type=float, default=150)
    ap.add_argument("--rtc-port", type=int, default=8443)
    ap.add_argument("--transport", default="udp")  # for start_serve
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--keep", help="keep logs in this folder")
    args = ap.parse_args()

    code = reexec_in_namespace()
    if code is not None:
        return code
    if not os.path.exists(args.chromium):
        return fail_early("chromium not found; run scripts/peers/install-chromium.sh")
    if not os.path.exists(args.callsctl):
        return fail_early("callsctl binary not found at %s; build it or pass --callsctl" % args.callsctl)
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-large-")
    os.makedirs(work, exist_ok=True)
    summary = {"ok": False, "work": work, "checks": []}
    code = run(args, summary, work)
    if not summary["ok"] and "error" not in summary:
        summary["error"] = "failed: " + ", ".join(c["check"] for c in summary["checks"] if not c["ok"])
    print(json.dumps(summary, indent=2, default=str))
    return code


def call_size(api_port, admin_key):
    """Participants of CHANNEL's call, from the admin API."""
    request = urllib.request.Request("http://127.0.0.1:%d/api/v1/calls" % api_port,
                                     headers={"Authorization": "Bearer " + admin_key})
    try:
        calls = json.loads(urllib.request.urlopen(request, timeout=5).read().decode()).get("calls", [])
    except (OSError, ValueError):
        return 0
    return sum(len(c.get("participants", [])) for c in calls if c.get("channel") == CHANNEL)


def run(args, summary, work):
    data_dir = os.path.join(work, "data")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    report_url = "http://127.0.0.1:%d/report" % receiver.server_address[1]
    serve, browsers, load = None, [], None
    try:
        serve, api_port, serve_lines = start_serve(args, data_dir, work)
        summary["serveStdout"] = serve_lines
        if api_port is None:
            summary["error"] = "callsctl serve did not print 'api listening on'; see %s/serve.log" % work
            return finish(summary, 1)
        with open(os.path.join(data_dir, "admin-key")) as f:
            admin_key = f.read().strip()
        # The media lasts long enough for Chromium to join and measure; the page reports well before it ends. 60 s,
        # not 30: on a starved machine (a fresh-clone run next to two fuzzers) Chromium's DTLS took 30 s to complete
        # in a call of 200 and the speakers had stopped when it got there.
        load_out = open(os.path.join(work, "loadtest.json"), "w")
        load_err = open(os.path.join(work, "loadtest.log"), "w")
        load = subprocess.Popen(
            [args.callsctl, "loadtest", "--url", "http://127.0.0.1:%d" % api_port, "--token-secret-file",
             os.path.join(data_dir, "token-secret"), "--channel", CHANNEL, "--participants", str(args.participants),
             "--speakers", str(len(TONES)), "--duration", "60", "--ramp", "100", "--role", "admin",
             "--join-timeout", "60", "--json"],
            stdout=load_out, stderr=load_err, start_new_session=True)
        deadline = time.time() + args.timeout
        while call_size(api_port, admin_key) < args.participants and time.time() < deadline and load.poll() is None:
            time.sleep(0.5)
        summary["callSizeBeforeChromium"] = call_size(api_port, admin_key)
        token = subprocess.run(
            [args.callsctl, "token", "create", "--data-dir", data_dir, "--channel", CHANNEL, "--user", "chromium",
             "--role", "admin", "--ttl", "600"], capture_output=True, text=True, check=True).stdout.strip()
        tone = os.path.join(work, "chromium.wav")
        write_tone(tone, hz=OWN_HZ, seconds=10)
        url = ("http://127.0.0.1:%d/?token=%s&autotest=%g&peers=2&expectSpeakers=2&ownHz=%d&expectHz=%s&report=%s"
               % (api_port, token, args.seconds, OWN_HZ, ",".join(str(t) for t in TONES), report_url))
        cmd = chromium_command(args.chromium, tone, os.path.join(work, "profile-chromium"), url)
        log = open(os.path.join(work, "chromium.log"), "w")
        browsers.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        while not Receiver.reports and time.time() < deadline:
            Receiver.event.wait(1)
            Receiver.event.clear()
        page = Receiver.reports[0] if Receiver.reports else None
        summary["page"] = {k: (page or {}).get(k) for k in ["ok", "error", "stage", "sessionId", "heard", "speakers",
                                                            "speakersSeen", "serverErrors"]}
        if page:
            summary["page"]["logTail"] = (page.get("log") or [])[-15:]
        # The load test ends by itself when its media time is up.
        try:
            load.wait(timeout=max(5, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        load_out.flush()
        try:
            with open(os.path.join(work, "loadtest.json")) as f:
                loadtest = json.load(f)
        except (OSError, ValueError):
            loadtest = None
        summary["loadtest"] = loadtest
        if page is None:
            summary["error"] = "the page did not report within %g s; see %s/chromium.log" % (args.timeout, work)
            return finish(summary, 1)
        return finish(summary, judge(summary, page, loadtest, args))
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait(timeout=10)
        stop_processes(browsers, serve, summary)
        receiver.shutdown()
        if not args.keep:
            shutil.rmtree(os.path.join(work, "profile-chromium"), ignore_errors=True)


def judge(summary, page, loadtest, args):
    checks = summary["checks"]

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    check("all %d scripted participants were in the call before Chromium joined" % args.participants,
          summary.get("callSizeBeforeChromium") == args.participants, summary.get("callSizeBeforeChromium"))
    slots = [h for h in (page.get("heard") or {}).values() if h.get("participant")]
    heard = sorted(h.get("hz") for h in slots if h.get("hz") is not None)
    for hz in TONES:
        check("Chromium hears the %d Hz speaker in a slot" % hz, any(abs(h - hz) <= 25 for h in heard), heard)
    check("Chromium does not hear its own %d Hz" % OWN_HZ, not any(abs(h - OWN_HZ) <= 25 for h in heard), heard)
    seen = set(page.get("speakersSeen") or [])
    check("the speakers map named the two speakers and never Chromium itself",
          len(seen) >= 2 and page.get("sessionId") not in seen, sorted(seen))
    check("page verdict", page.get("ok"), page.get("error"))
    joins = (loadtest or {}).get("joins") or {}
    check("the load test joined all %d" % args.participants, joins.get("joined") == args.participants
          and joins.get("failed") == 0, joins)
    check("no participant was asked to renegotiate", (loadtest or {}).get("renegotiations") == 0,
          (loadtest or {}).get("renegotiations"))
    media = (loadtest or {}).get("media") or {}
    check("the scripted listeners received the speakers' packets", media.get("receivedPackets", 0) > 0, media)
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
