#!/usr/bin/env python3
"""GStreamer webrtcbin as a participant in a call on a real `callsctl serve` (a third WebRTC stack next to
Chromium and aiortc).

    gst_webrtc.py --callsctl BIN --transport udp|tcp [--seconds S] [--keep DIR]

It starts `callsctl serve` on 127.0.0.1 (with --no-udp-candidates for `tcp`), an aiortc participant "alice"
playing 440 Hz (aiortc_calls.py participant) and a webrtcbin participant "gst" playing 660 Hz
(gst_participant.py, run with /usr/bin/python3, which has `gi`), both in one call, and checks:

  - both join; webrtcbin's offer (a sendonly Opus section plus joined.audioSlots recvonly ones) is answered,
    and the server logs no rejected offer section for it;
  - the server reports webrtcbin `connected` over the requested transport (`tcp`: ICE-TCP, RFC 6544/4571, the
    only candidates in the answer) and webrtcbin's own ICE state reaches connected/completed;
  - webrtcbin decodes alice's tone: the dominant frequency (GStreamer `spectrum`) of what arrives in the slot
    the `speakers` map gives alice is 440 Hz +-25, and webrtcbin is never put into one of its own slots;
  - alice hears webrtcbin's 660 Hz tone in her slots; after --seconds more, both directions still carry at least
    half of Opus' 50 packets/s over the last 3 s and the tones are still right;
  - both leave cleanly and serve exits 0 on SIGTERM.

aiortc (aioice) has no ICE-TCP. With `--transport tcp`, alice is therefore run through a small wrapper
(`aiortc-participant` below) that adds the server's UDP host candidate to the answers she gets (serve still
listens on UDP; --no-udp-candidates only leaves it out of answers): webrtcbin goes over TCP, alice over UDP,
so the call also crosses the two transports.

Keepalives: after ICE completes, webrtcbin 1.22's libnice agent sends only RFC 8445 §11 keepalives (STUN Binding
Indications) and no RFC 7675 consent checks (its `consent-freshness` is construct-only and webrtcbin leaves it
off). callsctl therefore also counts the client's authenticated SRTP/SRTCP as consent (before that, it closed
webrtcbin's session after 30 s); `--seconds 40` checks this (the Swift test does so over UDP).
`--keepalive-conncheck` makes libnice send Binding Requests instead (not needed any more). `--mic-direction sendrecv` offers the microphone as webrtcbin does by default (the server takes both).

Prints one JSON document (webrtcbin's offer and the answer are saved in the work folder, kept on failure or with
--keep). Exit: 0 pass, 1 fail, 3 could not run (no aiortc/numpy for python3, or no gi/webrtcbin/libnice for
/usr/bin/python3; CALLSCTL_GST_PYTHON names another interpreter). Every wait is bounded. Loopback only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import aiortc_calls  # noqa: E402
from aiortc_calls import Checks, Peer, Serve  # noqa: E402

GST_PYTHON = os.environ.get("CALLSCTL_GST_PYTHON", "/usr/bin/python3")
GST_SCRIPT = os.path.join(HERE, "gst_participant.py")
ALICE_HZ, GST_HZ = 440, 660
RUNNING = []   # serve and participant processes, for the watchdog


def aiortc_participant_main(argv):
    """`gst_webrtc.py aiortc-participant --udp-port N ...`: aiortc_calls' participant, with the server's UDP host
    candidate added to every answer (for serve --no-udp-candidates: aioice cannot do ICE-TCP)."""
    import aiortc
    udp_port = int(argv[argv.index("--udp-port") + 1])
    rest = argv[:argv.index("--udp-port")] + argv[argv.index("--udp-port") + 2:]
    original = aiortc.RTCSessionDescription

    def with_udp(sdp, type):
        if type == "answer" and not re.search(r"^a=candidate:\S+ \d+ udp ", sdp, re.M | re.I):
            # Before the first candidate of every section (aiortc reads a bundle's candidates from one of them).
            out, seen = [], False
            for line in sdp.split("\r\n"):
                if line.startswith("m="):
                    seen = False
                if line.startswith(("a=candidate:", "a=end-of-candidates")) and not seen:
                    out.append("a=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host" % udp_port)
                    seen = True
                out.append(line)
            sdp = "\r\n".join(out)
        return original(sdp=sdp, type=type)
    aiortc.RTCSessionDescription = with_udp
    sys.argv = [sys.argv[0]] + rest
    return aiortc_calls.main()


class AlicePeer(Peer):
    """The aiortc participant; through the UDP-candidate wrapper when the server offers only TCP."""

    def __init__(self, serve, name, hz, udp_port=None):
        if udp_port is None:
            super().__init__(aiortc_calls.__file__, serve, name, hz)
            return
        self.name, self.hz, self.lines = name, hz, []
        cmd = [sys.executable, os.path.abspath(__file__), "aiortc-participant", "participant", "--api", str(serve.api),
               "--token", serve.token(name), "--hz", str(hz), "--udp-port", str(udp_port)]
        self._start(cmd, subprocess.DEVNULL)

    def _start(self, cmd, stderr):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()


class GstPeer(AlicePeer):
    """The webrtcbin participant (/usr/bin/python3 gst_participant.py); its stderr goes to WORK/gst.stderr."""

    def __init__(self, serve, name, hz, work, timeout, keepalive_conncheck=False, mic_direction="sendonly"):
        self.name, self.hz, self.lines = name, hz, []
        self.stderr = open(os.path.join(work, "gst.stderr"), "w")
        cmd = [GST_PYTHON, GST_SCRIPT, "--api", str(serve.api), "--token", serve.token(name), "--hz", str(hz),
               "--timeout", str(timeout), "--mic-direction", mic_direction] + \
            (["--keepalive-conncheck"] if keepalive_conncheck else [])
        self._start(cmd, self.stderr)

    def gst(self, event):
        with self.cond:
            return [o for o in self.lines if o.get("type") == "gst" and o.get("event") == event]


def probe():
    """None when both stacks are there, else why not."""
    try:
        import aiortc  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        return "aiortc and numpy are not installed for %s (pip install aiortc numpy)" % sys.executable
    if not os.path.exists(GST_PYTHON):
        return "%s not found (it runs the webrtcbin participant)" % GST_PYTHON
    try:
        r = subprocess.run([GST_PYTHON, GST_SCRIPT, "--probe"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "probing GStreamer timed out"
    if r.returncode != 0:
        return "GStreamer webrtcbin unavailable for %s: %s" % (GST_PYTHON, (r.stdout + r.stderr).strip()[-500:])
    return None


def sdp_excerpt(sdp):
    keep = ("m=", "a=mid", "a=sendonly", "a=recvonly", "a=sendrecv", "a=inactive", "a=rtpmap", "a=group",
            "a=setup", "a=rtcp-mux", "a=extmap", "a=ssrc", "a=candidate", "a=ice-lite")
    return [l for l in (sdp or "").replace("\r", "").split("\n") if l.startswith(keep)]


def scenario(args, work, check, summary):
    tcp = args.transport == "tcp"
    serve = Serve(args.callsctl, work, ["--no-udp-candidates"] if tcp else [])
    RUNNING.append(serve.proc)
    summary["serve"] = {"api": serve.api, "rtcUdp": serve.rtc_udp}
    peers = []
    try:
        alice = AlicePeer(serve, "alice", ALICE_HZ, udp_port=serve.rtc_udp if tcp else None)
        peers.append(alice)
        RUNNING.append(alice.proc)
        check("alice (aiortc) joins", alice.first("joined"), alice.lines[-2:])
        check("alice connects", alice.first("connected", 30), alice.lines[-3:])
        gst = GstPeer(serve, "gst", GST_HZ, work, timeout=args.seconds + 90,
                      keepalive_conncheck=args.keepalive_conncheck, mic_direction=args.mic_direction)
        peers.append(gst)
        RUNNING.append(gst.proc)
        check("gst (webrtcbin) joins", gst.first("joined"), gst.lines[-3:])
        offer = gst.wait_for(lambda o: o.get("type") == "gst" and o.get("event") == "offer", 20)
        summary["gstOffer"] = sdp_excerpt(offer and offer.get("sdp"))
        answer = gst.first("answer", 20)
        summary["gstAnswer"] = sdp_excerpt(answer and answer.get("sdp"))
        for name, o in (("gst-offer.sdp", offer), ("gst-answer.sdp", answer)):
            with open(os.path.join(work, name), "w") as f:
                f.write((o or {}).get("sdp") or "")
        check("webrtcbin's offer is answered", answer and answer.get("type") == "answer", gst.lines[-3:])
        check("webrtcbin applies the answer", gst.wait_for(
            lambda o: o.get("type") == "gst" and o.get("event") == "answer-applied" or o.get("type") == "crash", 10)
            and not gst.events_of("crash"), gst.events_of("crash"))
        if tcp:
            cands = [l for l in summary["gstAnswer"] if l.startswith("a=candidate")]
            check("the answer has only TCP candidates", cands and all(" tcp " in l.lower() for l in cands), cands)
        connected = gst.first("connected", 30)
        check("the server reports webrtcbin connected", connected and connected.get("type") == "connected",
              gst.lines[-3:])
        check("webrtcbin is connected over %s" % args.transport, connected and connected.get("transport") == args.transport,
              connected)
        ice = gst.wait_for(lambda o: o.get("type") == "gst" and o.get("event") == "ice-connection-state"
                           and o.get("state") in ("connected", "completed"), 20)
        check("webrtcbin's ICE state reaches connected", ice, gst.gst("ice-connection-state"))
        alice_connected = alice.first("connected", 5) or {}
        summary["aliceTransport"] = alice_connected.get("transport")

        heard = gst.hears(alice, 30)
        check("webrtcbin decodes alice's 440 Hz tone", heard, gst.last_status())
        check("alice hears webrtcbin's 660 Hz tone", alice.hears(gst, 30), alice.last_status())
        check("webrtcbin's speakers map puts alice in a slot",
              gst.wait_slots(lambda m: alice.session in m.values(), 5), gst.latest_slots())

        # Media for --seconds more, then both directions must still flow in the last 3 s (with --seconds over 30
        # this spans the server's consent timeout: a session whose checks stopped is closed then).
        def counts():
            return ((gst.last_status() or {}).get("packets", {}).get(alice.session, 0),
                    (alice.last_status() or {}).get("packets", {}).get(gst.session, 0))
        start = counts()
        time.sleep(max(0.0, args.seconds - 3))
        mid = counts()
        time.sleep(3)
        end = counts()
        summary["packets"] = {"gstFromAlice": [start[0], mid[0], end[0]], "aliceFromGst": [start[1], mid[1], end[1]]}
        # 50 packets/s of Opus; at least half of them.
        check("webrtcbin keeps receiving alice (last 3 s)", end[0] - mid[0] >= 75, summary["packets"])
        check("alice keeps receiving webrtcbin (last 3 s)", end[1] - mid[1] >= 75, summary["packets"])
        status = gst.last_status() or {}
        check("webrtcbin still hears 440 Hz at the end",
              abs((status.get("hz", {}).get(alice.session) or 0) - ALICE_HZ) <= 25, status)
        status = alice.last_status() or {}
        check("alice still hears 660 Hz at the end",
              abs((status.get("hz", {}).get(gst.session) or 0) - GST_HZ) <= 25, status)
        check("webrtcbin is never put into its own slot", gst.session not in gst.speakers_seen(),
              sorted(gst.speakers_seen()))
        check("no errors for webrtcbin or alice", not gst.errors() and not alice.errors(),
              gst.errors() + alice.errors())
        gst_errors = gst.gst("error")
        check("webrtcbin's pipeline posts no error", not gst_errors, gst_errors)
        summary["gstWarnings"] = [w.get("message") for w in gst.gst("warning")][:5]

        for p in (gst, alice):
            p.leave()
        check("webrtcbin leaves cleanly", gst.wait_for(lambda o: o.get("type") == "left", 5)
              and gst.proc.poll() is not None, gst.lines[-3:])
        summary["final"] = {"gst": gst.last_status(), "alice": alice.last_status()}
    finally:
        for p in peers:
            p.kill()
        summary["peers"] = {p.name: [o for o in p.lines if o.get("type") not in ("status", "answer") and
                                     not (o.get("type") == "gst" and o.get("event") == "offer")][-10:] for p in peers}
        summary["serveExit"] = serve.stop()
        serve.log.close()
    with open(serve.log.name) as f:
        log = f.read()
    rejected = [l for l in log.splitlines() if "rejected" in l.lower()]
    summary["serveLogRejected"] = rejected[:10]
    check("serve logs no rejected offer sections", not any("offer sections rejected" in l for l in rejected), rejected[:5])
    check("serve exits 0 on SIGTERM", summary["serveExit"] == 0, summary["serveExit"])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "aiortc-participant":
        return aiortc_participant_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--seconds", type=float, default=4, help="how long to keep checking media after both hear (4)")
    ap.add_argument("--mic-direction", choices=["sendonly", "sendrecv"], default="sendonly",
                    help="webrtcbin's microphone section (sendonly; sendrecv is webrtcbin's default)")
    ap.add_argument("--keepalive-conncheck", action="store_true",
                    help="make libnice send Binding Requests as keepalives (a client-side workaround, see above)")
    ap.add_argument("--keep", help="keep logs in this folder")
    args = ap.parse_args()
    why = probe()
    if why:
        print(json.dumps({"ok": False, "transport": args.transport, "error": why}, indent=2))
        return 3
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-gst-")
    os.makedirs(work, exist_ok=True)
    check = Checks()
    summary = {"transport": args.transport, "work": work}
    started = time.time()
    # The whole run is bounded: a watchdog ends it (exit 1) if a wait somewhere hangs.
    def expire():
        for proc in RUNNING:
            if proc.poll() is None:
                proc.kill()
        print(json.dumps(dict(summary, ok=False, error="timed out", checks=check.items), indent=2, default=str),
              flush=True)
        os._exit(1)
    watchdog = threading.Timer(150 + args.seconds, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        scenario(args, work, check, summary)
    except Exception as e:
        check("scenario ran", False, repr(e))
    watchdog.cancel()
    summary["seconds"] = round(time.time() - started, 1)
    summary["checks"] = check.items
    summary["ok"] = check.ok
    if not check.ok:
        summary["error"] = "failed: " + ", ".join(c["check"] for c in check.items if not c["ok"])
        summary["serveLog"] = os.path.join(work, "serve.log")
    if not args.keep and check.ok:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2, default=str))
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
