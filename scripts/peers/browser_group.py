#!/usr/bin/env python3
"""Three headless Chromium participants in one call on `callsctl serve`, inside a private network namespace.

Each browser's fake microphone plays its own tone: alice 440 Hz, bob 660 Hz, carol 880 Hz. The page at /
joins the call of one channel; every page measures the dominant frequency of each remote audio track on its
own. Audio comes in the server's audio slots (three per listener): the page keys each received track by its
transceiver mid and learns from the `speakers` messages (protocol v2) which participant is in which slot. Then
alice shares a screen (Chromium's fake camera as the screen track), bob and carol decode its
frames, bob mutes, and alice and carol check that bob's audio packets stop arriving while bob is still in
the call. Each page POSTs its result to a receiver in this script, which checks:

  - each participant heard the two other tones, each in a slot the speakers map gives to the right participant,
    and not its own; its speakers map named both others and never itself;
  - bob and carol decoded at least 10 frames of alice's screen;
  - after bob's `muted` event, alice and carol received no more audio packets in the slot that carried bob, and
    the speakers map no longer puts bob in a slot.

With --loss PCT, nftables in the namespace drops that share of the server's UDP datagrams, so the
viewers lose screen packets and ask for them again: the server must answer NACKs from its retransmission
buffer (checked in /metrics along with forwarded PLIs, receiver reports and REMB).

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_echo import (CHANNEL, Receiver, chromium_command, fail_early, reexec_in_namespace,  # noqa: E402
                          start_serve, stop_processes, write_tone)

PARTICIPANTS = [
    # user, tone, page options
    ("alice", 440, "share=1&fakescreen=1&expectMute=1"),
    ("bob", 660, "expectScreen=1&muteAfterScreen=1"),
    ("carol", 880, "expectScreen=1&expectMute=1"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--seconds", type=float, default=4, help="audio measuring window once all tones are heard")
    ap.add_argument("--timeout", type=float, default=150)
    ap.add_argument("--rtc-port", type=int, default=8443)
    ap.add_argument("--transport", default="udp")  # for start_serve
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--keep", help="keep logs in this folder")
    ap.add_argument("--loss", type=int, default=0, help="percent of the server's UDP datagrams to drop (nftables)")
    args = ap.parse_args()

    code = reexec_in_namespace()
    if code is not None:
        return code
    if not os.path.exists(args.chromium):
        return fail_early("chromium not found; run scripts/peers/install-chromium.sh")
    if not os.path.exists(args.callsctl):
        return fail_early("callsctl binary not found at %s; build it or pass --callsctl" % args.callsctl)
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-group-")
    os.makedirs(work, exist_ok=True)
    summary = {"ok": False, "work": work, "checks": []}
    if args.loss:
        # On the input hook, like loss in the network: a drop on the output hook would make the server's
        # sendmsg fail with EPERM instead, which is a different test.
        rule = ("add table inet lossy\nadd chain inet lossy in { type filter hook input priority 0; }\n"
                "add rule inet lossy in udp sport %d numgen random mod 100 < %d drop\n" % (args.rtc_port, args.loss))
        nft = subprocess.run(["nft", "-f", "-"], input=rule, text=True, capture_output=True)
        if nft.returncode != 0:
            return fail_early("nft could not install the loss rule: %s" % nft.stderr.strip())
    code = run(args, summary, work)
    if not summary["ok"] and "error" not in summary:
        summary["error"] = "failed: " + ", ".join(c["check"] for c in summary["checks"] if not c["ok"])
    print(json.dumps(summary, indent=2, default=str))
    return code


def run(args, summary, work):
    data_dir = os.path.join(work, "data")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    report_url = "http://127.0.0.1:%d/report" % receiver.server_address[1]
    serve, browsers = None, []
    try:
        serve, api_port, serve_lines = start_serve(args, data_dir, work)
        summary["serveStdout"] = serve_lines
        if api_port is None:
            summary["error"] = "callsctl serve did not print 'api listening on'; see %s/serve.log" % work
            return finish(summary, 1)
        for user, hz, options in PARTICIPANTS:
            token = subprocess.run(
                [args.callsctl, "token", "create", "--data-dir", data_dir, "--channel", CHANNEL, "--user", user,
                 "--ttl", "600"], capture_output=True, text=True, check=True).stdout.strip()
            tone = os.path.join(work, "%s.wav" % user)
            write_tone(tone, hz=hz, seconds=10)
            others = ",".join(str(h) for u, h, _ in PARTICIPANTS if u != user)
            url = ("http://127.0.0.1:%d/?token=%s&autotest=%g&peers=2&expectSpeakers=2&ownHz=%d&expectHz=%s&report=%s&%s"
                   % (api_port, token, args.seconds, hz, others, report_url, options))
            cmd = chromium_command(args.chromium, tone, os.path.join(work, "profile-" + user), url)
            log = open(os.path.join(work, "chromium-%s.log" % user), "w")
            browsers.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            time.sleep(1)
        deadline = time.time() + args.timeout
        while len(Receiver.reports) < len(PARTICIPANTS) and time.time() < deadline:
            Receiver.event.wait(1)
            Receiver.event.clear()
        summary["metrics"] = scrape(api_port)
        pages = {}
        for report in Receiver.reports:
            user = next((e.get("user") for e in report.get("events", []) if e.get("participant") == report.get("sessionId")), None)
            pages[user or "?%d" % len(pages)] = report
        summary["pages"] = {u: compact(p) for u, p in pages.items()}
        if len(pages) < len(PARTICIPANTS):
            summary["error"] = "only %d of %d pages reported within %g s; see %s/chromium-*.log" % (
                len(pages), len(PARTICIPANTS), args.timeout, work)
            return finish(summary, 1)
        return finish(summary, judge(summary, pages, args))
    finally:
        stop_processes(browsers, serve, summary)
        receiver.shutdown()
        if not args.keep:
            for user, _, _ in PARTICIPANTS:
                shutil.rmtree(os.path.join(work, "profile-" + user), ignore_errors=True)


def scrape(port):
    """The server's counters after the call, as {series: value}."""
    import urllib.request
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    except OSError as e:
        return {"error": str(e)}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "callsctl_" in line:
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def compact(page):
    keep = ["ok", "error", "stage", "sessionId", "serverTransport", "heard", "speakers", "speakersSeen", "framesDecoded",
            "muteCheck", "serverErrors"]
    out = {k: page.get(k) for k in keep}
    out["events"] = [(e.get("event"), e.get("user")) for e in page.get("events", [])]
    out["logTail"] = (page.get("log") or [])[-15:]
    return out


def judge(summary, pages, args):
    checks = summary["checks"]

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    tones = {u: hz for u, hz, _ in PARTICIPANTS}
    session_of = {u: p.get("sessionId") for u, p in pages.items()}
    for user, page in pages.items():
        # heard: slot mid -> {participant, user, hz}; the user is the one the speakers map put in that slot.
        slots = [h for h in (page.get("heard") or {}).values() if h.get("participant")]
        heard = {h.get("user"): h.get("hz") for h in slots}
        check("%s heard each other participant in a slot of its own" % user,
              len(slots) == len(heard) == len(PARTICIPANTS) - 1, page.get("heard"))
        seen = set(page.get("speakersSeen") or [])
        others = {session_of[u] for u in session_of if u != user}
        check("%s's speakers map named the two others and never itself" % user,
              seen == others and session_of[user] not in seen, {"seen": sorted(seen), "others": sorted(others)})
        for other, hz in tones.items():
            if other == user:
                continue
            got = heard.get(other)
            check("%s hears %s's %d Hz" % (user, other, hz), got is not None and abs(got - hz) <= 25, got)
        own = [u for u, h in heard.items() if h is not None and abs(h - tones.get(user, 0)) <= 25]
        check("%s does not hear its own %d Hz" % (user, tones.get(user, 0)), not own, heard)
        check("%s page verdict" % user, page.get("ok"), page.get("error"))
    for viewer in ("bob", "carol"):
        frames = (pages.get(viewer) or {}).get("framesDecoded") or 0
        check("%s decodes alice's screen" % viewer, frames >= 10, frames)
    for listener in ("alice", "carol"):
        m = (pages.get(listener) or {}).get("muteCheck") or {}
        check("%s stops receiving bob's audio after bob mutes" % listener,
              m.get("user") == "bob" and m.get("packetsAt1s") is not None and m.get("packetsAt1s") == m.get("packetsAt3_5s"), m)
    m = summary.get("metrics") or {}
    check("server forwarded audio and screen packets",
          m.get('callsctl_forwarded_packets_total{kind="audio"}', 0) > 0
          and m.get('callsctl_forwarded_packets_total{kind="video"}', 0) > 0,
          {k: v for k, v in m.items() if "forwarded" in k})
    check("server timed each forwarded packet (latency histogram)",
          m.get("callsctl_forward_latency_seconds_count", 0) >= m.get('callsctl_forwarded_packets_total{kind="audio"}', 1),
          {k: v for k, v in m.items() if "latency_seconds_count" in k or "_sum" in k})
    check("server passed viewers' key-frame requests to the presenter",
          m.get('callsctl_keyframe_requests_total{result="forwarded"}', 0) > 0,
          {k: v for k, v in m.items() if "keyframe" in k})
    check("server sent receiver reports and REMB to publishers",
          m.get('callsctl_rtcp_sent_total{type="receiver_report"}', 0) > 0
          and m.get('callsctl_rtcp_sent_total{type="remb"}', 0) > 0,
          {k: v for k, v in m.items() if "rtcp_sent" in k})
    if args.loss:
        check("viewers' NACKs were answered from the retransmission buffer",
              m.get("callsctl_nacks_total", 0) > 0 and m.get("callsctl_retransmitted_packets_total", 0) > 0,
              {k: v for k, v in m.items() if "nack" in k or "retransmitted" in k})
    return 0 if all(c["ok"] for c in checks) else 1


def finish(summary, code):
    summary["ok"] = code == 0
    summary["exit"] = code
    return code


if __name__ == "__main__":
    sys.exit(main())
