#!/usr/bin/env python3
"""Headless Chromium joins an echo call on `callsctl serve`, inside a private network namespace.

The browser's fake microphone plays a 440 Hz tone; the page (served by `serve` at /) joins over the /ws
signaling, sends the tone to the server and listens to what comes back. After --seconds of media it
POSTs its result (inbound-rtp packet counts, the dominant frequency heard through an AnalyserNode, the
selected ICE candidate pair) to a small receiver in this script, which checks it.

Modes:
  echo      the real thing: browser <-> callsctl serve (UDP, or TCP with --transport tcp, where serve
            runs with --no-udp-candidates and the selected pair must be TCP)
  loopback  two RTCPeerConnections inside the page (no media server): proves Chromium, the namespace,
            the fake tone and the frequency detection work

Exit: 0 pass, 1 fail, 3 could not run (no chromium, no namespace) or the server has no media transport.
Prints one JSON document with everything measured. Needs root for `unshare -n` (CI runs as root).
Stdlib only.
"""
import argparse
import http.server
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave

CHANNEL = "4xp9fdt3pbdp7nrw7xjmrd8kkc"


def reexec_in_namespace():
    """Run this script again inside `unshare -n` with loopback up, unless already there."""
    if os.environ.get("CALLSCTL_IN_NETNS") == "1":
        return None
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return fail_early("unshare or ip not found (util-linux, iproute2)")
    env = dict(os.environ, CALLSCTL_IN_NETNS="1")
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable] + sys.argv
    proc = subprocess.run(cmd, env=env)
    return proc.returncode


def fail_early(message, code=3):
    print(json.dumps({"ok": False, "stage": "setup", "error": message}, indent=2))
    return code


def write_tone(path, hz=440.0, seconds=10, rate=48000, amplitude=0.5):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        for i in range(int(seconds * rate)):
            frames += struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * hz * i / rate)))
        w.writeframes(bytes(frames))


class Receiver(http.server.BaseHTTPRequestHandler):
    reports = []
    event = threading.Event()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(length, 4 * 1024 * 1024))
        try:
            Receiver.reports.append(json.loads(body))
        except ValueError:
            Receiver.reports.append({"ok": False, "error": "unparseable report", "raw": body[:500].decode("utf-8", "replace")})
        Receiver.event.set()
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_serve(args, data_dir, out):
    cmd = [args.callsctl, "serve", "--data-dir", data_dir, "--api-listen", "127.0.0.1:0",
           "--rtc-listen", "127.0.0.1:%d" % args.rtc_port]
    if args.transport == "tcp":
        cmd.append("--no-udp-candidates")
    log = open(os.path.join(out, "serve.log"), "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=dict(os.environ, NO_COLOR="1"))
    deadline = time.time() + 30
    port = None
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("api listening on "):
            port = int(line.rsplit(":", 1)[1])
        if line.startswith("data directory:"):
            break
    # Keep draining stdout so serve never blocks on a full pipe.
    threading.Thread(target=lambda: [lines.append(l.rstrip()) for l in proc.stdout], daemon=True).start()
    return proc, port, lines


def chromium_command(chromium, tone, profile, url):
    """Headless Chromium with fake devices (the microphone plays `tone`), loopback ICE allowed."""
    return [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--use-file-for-fake-audio-capture=%s" % tone, "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required", "--user-data-dir=%s" % profile, url]


def stop_processes(browsers, serve, summary):
    """Kills the browsers' process groups and stops serve with SIGTERM, noting its exit in `summary`."""
    for b in browsers:
        try:
            os.killpg(b.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        b.wait()
    if serve is not None:
        serve.send_signal(signal.SIGTERM)
        try:
            summary["serveExit"] = serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
            summary["serveExit"] = "killed after 15 s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--mode", choices=["echo", "loopback"], default="echo")
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--rtc-port", type=int, default=8443)
    ap.add_argument("--hz", type=float, default=440)
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

    work = args.keep or tempfile.mkdtemp(prefix="callsctl-browser-")
    os.makedirs(work, exist_ok=True)
    data_dir = os.path.join(work, "data")
    tone = os.path.join(work, "tone.wav")
    write_tone(tone, hz=args.hz)
    summary = {"ok": False, "mode": args.mode, "transport": args.transport, "work": work, "checks": []}
    code = run(args, summary, work, data_dir, tone)
    if not summary["ok"] and "error" not in summary:
        failed = [c["check"] for c in summary["checks"] if not c["ok"]]
        summary["error"] = "failed: " + ", ".join(failed)
    if summary.get("serveExit") not in (0, None) and code == 0:
        summary["error"] = "callsctl serve exited with %s after SIGTERM, not 0" % summary["serveExit"]
        code = finish(summary, 1)
    print(json.dumps(summary, indent=2, default=str))
    return code


def run(args, summary, work, data_dir, tone):

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    report_url = "http://127.0.0.1:%d/report" % receiver.server_address[1]

    serve, chromium = None, None
    try:
        token = subprocess.run(
            [args.callsctl, "token", "create", "--data-dir", data_dir, "--channel", CHANNEL, "--user", "browser",
             "--ttl", "600"], capture_output=True, text=True, check=True).stdout.strip()
        serve, api_port, serve_lines = start_serve(args, data_dir, work)
        summary["serveStdout"] = serve_lines
        if api_port is None:
            summary["error"] = "callsctl serve did not print 'api listening on'; see %s/serve.log" % work
            return finish(summary, 1)
        query = "autotest=%g&expectHz=%g&report=%s" % (args.seconds, args.hz, report_url)
        if args.mode == "loopback":
            query += "&selftest=loopback"
        else:
            query += "&echo=1&token=%s&expectTransport=%s" % (token, args.transport)
        url = "http://127.0.0.1:%d/?%s" % (api_port, query)
        profile = os.path.join(work, "profile")
        cmd = chromium_command(args.chromium, tone, profile, url)
        chromium = subprocess.Popen(cmd, stdout=open(os.path.join(work, "chromium.log"), "w"),
                                    stderr=subprocess.STDOUT, start_new_session=True)
        if not Receiver.event.wait(args.timeout):
            summary["error"] = "no result from the page within %g s; see %s/chromium.log" % (args.timeout, work)
            return finish(summary, 1)
        page = Receiver.reports[0]
        summary["page"] = page
        return finish(summary, judge(summary, page, args))
    finally:
        stop_processes([chromium] if chromium is not None else [], serve, summary)
        receiver.shutdown()
        if not args.keep:
            shutil.rmtree(os.path.join(work, "profile"), ignore_errors=True)


def judge(summary, page, args):
    checks = summary["checks"]

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})
        return ok

    errors = page.get("serverErrors") or []
    if any(e.get("code") == "media_unavailable" for e in errors):
        summary["error"] = "this callsctl has no media transport yet (media_unavailable); signaling and the page work"
        return 3
    packets = page.get("packetsReceived") or []
    grew = len(packets) >= 2 and packets[-1] > packets[0] and packets[-1] > 0
    check("inbound-rtp.packetsReceived grows", grew, packets[:1] + packets[-1:])
    hz = page.get("dominantHz")
    check("dominant frequency ~ %g Hz" % args.hz, hz is not None and abs(hz - args.hz) <= 25, hz)
    if args.mode == "echo":
        pair = page.get("pair") or {}
        check("selected candidate pair is %s" % args.transport, pair.get("protocol") == args.transport, pair)
        server = page.get("serverTransport")
        check("server reported connected over %s" % args.transport, server == args.transport, server)
    check("page verdict", page.get("ok"), page.get("error"))
    return 0 if all(c["ok"] for c in checks) else 1


def finish(summary, code):
    summary["ok"] = code == 0
    summary["exit"] = code
    return code


if __name__ == "__main__":
    sys.exit(main())
