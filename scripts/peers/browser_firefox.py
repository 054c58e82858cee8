#!/usr/bin/env python3
"""Firefox ESR, Chromium and an aiortc participant in one call on `callsctl serve`, inside a private network namespace.

  alice  headless Chromium through the page at /; its fake microphone plays a 440 Hz file; it shares its fake
         camera as a screen
  bob    headless Firefox ESR through the same page; its fake microphone is Firefox's generated sine tone, set to
         660 Hz with the pref media.navigator.audio.fake_frequency (Firefox's default is 1000 Hz); Firefox plays
         audio into a PulseAudio daemon with a null sink started in the namespace (without an audio sink its
         AudioContext stays suspended and the page measures nothing)
  carol  a scripted aiortc participant (aiortc_calls.py `participant`) publishing an 880 Hz sine

Checks:
  - each of the three hears the two other tones (dominant frequency within 25 Hz), each in a slot the speakers
    map gives to the right participant, and never its own tone; no speakers map ever names the listener itself;
  - Firefox decodes at least 10 frames of the screen Chromium shares;
  - after the screen check Firefox mutes; Chromium (the page's muteCheck) and aiortc (the raw packet counter of
    the audio slot that last carried Firefox, 1 s and 3.5 s after the `muted` event) see no more of its audio
    packets, and their speakers maps no longer put Firefox in a slot.

Loopback only: everything runs in `unshare -n` with just `lo` up. Every wait is bounded (--timeout).
Exit: 0 pass, 1 fail, 3 could not run (no firefox-esr, chromium, pulseaudio, aiortc or namespace). Prints one JSON
document. Needs root for `unshare -n` (CI runs as root). Stdlib only (the aiortc participant runs in a child
process under the same python, which needs `pip install aiortc numpy`).
"""
import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from browser_echo import (CHANNEL, Receiver, chromium_command, fail_early, reexec_in_namespace,  # noqa: E402
                          start_serve, stop_processes, write_tone)
from browser_group import compact, finish, scrape  # noqa: E402

ALICE_HZ, BOB_HZ, CAROL_HZ = 440, 660, 880
FIREFOX_DEFAULT_HZ = 1000  # Firefox's fake microphone without media.navigator.audio.fake_frequency
TOLERANCE = 25

FIREFOX_PREFS = {
    # fake devices without a prompt; the fake microphone's tone
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # A standing microphone/camera permission: without one (media.navigator.permission.disabled grants no
    # permission) Firefox gathers only its "default" address, found by connecting a UDP socket towards the
    # internet, which fails in a namespace without a default route: no candidates, the connection fails at once.
    "permissions.default.microphone": 1,
    "permissions.default.camera": 1,
    "media.peerconnection.ice.default_address_only": False,
    # ICE on loopback, host addresses in the clear (no mDNS names)
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.link_local": True,
    # playback and Web Audio without a user gesture
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.autoplay.blocking_policy": 0,
    # no first-run pages, telemetry, updates or background traffic
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "browser.startup.firstrunSkipsHomepage": True,
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "trailhead.firstrun.didSeeAboutWelcome": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "toolkit.telemetry.unified": False,
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "browser.newtabpage.enabled": False,
    "browser.tabs.warnOnClose": False,
    "browser.sessionstore.resume_from_crash": False,
    "dom.disable_open_during_load": False,
    "toolkit.startup.max_resumed_crashes": -1,
}


def main():
    global BOB_HZ
    if len(sys.argv) > 1 and sys.argv[1] == "aiortc-participant":
        return aiortc_participant(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--seconds", type=float, default=4, help="audio measuring window once all tones are heard")
    ap.add_argument("--timeout", type=float, default=150, help="limit for the whole call, in seconds")
    ap.add_argument("--rtc-port", type=int, default=8443)
    ap.add_argument("--transport", default="udp")  # for start_serve
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--firefox", default=shutil.which("firefox-esr") or "/usr/bin/firefox-esr")
    ap.add_argument("--pulseaudio", default=shutil.which("pulseaudio") or "/usr/bin/pulseaudio")
    ap.add_argument("--firefox-hz", type=int, default=BOB_HZ,
                    help="Firefox's fake tone (media.navigator.audio.fake_frequency); 0 leaves Firefox's default, "
                         "expected to be %d Hz" % FIREFOX_DEFAULT_HZ)
    ap.add_argument("--no-pulseaudio", action="store_true",
                    help="diagnostics: start Firefox without an audio sink (its AudioContext then never runs)")
    ap.add_argument("--keep", help="keep logs (and the profiles) in this folder")
    args = ap.parse_args()
    BOB_HZ = args.firefox_hz or FIREFOX_DEFAULT_HZ

    code = reexec_in_namespace()
    if code is not None:
        return code
    for name, path in (("chromium", args.chromium), ("firefox-esr", args.firefox), ("pulseaudio", args.pulseaudio)):
        if not os.path.exists(path):
            return fail_early("%s not found (%s)" % (name, path))
    if not os.path.exists(args.callsctl):
        return fail_early("callsctl binary not found at %s; build it or pass --callsctl" % args.callsctl)
    probe = subprocess.run([sys.executable, "-c", "import aiortc, numpy"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return fail_early("aiortc and numpy are not installed for %s (pip install aiortc numpy)" % sys.executable)
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-firefox-")
    os.makedirs(work, exist_ok=True)
    summary = {"ok": False, "work": work, "tones": {"alice (chromium)": ALICE_HZ, "bob (firefox)": BOB_HZ,
                                                      "carol (aiortc)": CAROL_HZ}, "checks": []}
    started = time.time()
    code = run(args, summary, work)
    summary["seconds"] = round(time.time() - started, 1)
    summary["serveWarnings"] = serve_warnings(os.path.join(work, "serve.log"))
    if summary.get("serveExit") not in (0, None) and code == 0:
        summary["error"] = "callsctl serve exited with %s after SIGTERM, not 0" % summary["serveExit"]
        code = finish(summary, 1)
    if not summary["ok"] and "error" not in summary:
        summary["error"] = "failed: " + ", ".join(c["check"] for c in summary["checks"] if not c["ok"])
    if code == 0 and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2, default=str))
    return code


# ----------------------------------------------------------------------------------------------------------
# PulseAudio with a null sink, for Firefox's audio output

def start_pulseaudio(binary, work):
    """A private PulseAudio daemon with a null sink; returns (process, PULSE_SERVER value) or (process, None)."""
    base = os.path.join(work, "pulse")
    run_dir = os.path.join(base, "run")
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    os.makedirs(os.path.join(base, "home"), exist_ok=True)
    socket = os.path.join(run_dir, "native")
    env = dict(os.environ, XDG_RUNTIME_DIR=run_dir, PULSE_RUNTIME_PATH=run_dir, HOME=os.path.join(base, "home"),
               PULSE_STATE_PATH=os.path.join(base, "state"))
    # -n: no default.pa (no hardware, no D-Bus, no X11 modules); as root PulseAudio only warns that it is not
    # meant to run as root, and user mode works with its own runtime directory.
    cmd = [binary, "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no", "-n",
           "--disable-shm=yes", "--log-target=stderr",
           "-L", "module-null-sink sink_name=null rate=48000",
           "-L", "module-native-protocol-unix socket=%s auth-anonymous=1" % socket]
    log = open(os.path.join(work, "pulseaudio.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 15
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(socket):
            return proc, "unix:" + socket
        time.sleep(0.1)
    return proc, None


def firefox_command(firefox, profile, url, hz):
    os.makedirs(profile, exist_ok=True)
    prefs = dict(FIREFOX_PREFS)
    if hz:
        prefs["media.navigator.audio.fake_frequency"] = hz
    with open(os.path.join(profile, "user.js"), "w") as f:
        for key, value in prefs.items():
            f.write("user_pref(%s, %s);\n" % (json.dumps(key), json.dumps(value)))
    return [firefox, "--headless", "--no-remote", "--profile", profile, url]


# ----------------------------------------------------------------------------------------------------------
# The aiortc participant: aiortc_calls.py's `participant`, with the raw packet counter of each audio slot added to
# its status lines (its own `packets` only counts a slot's packets for the participant the speakers map names, so
# audio still arriving in a slot after the map dropped someone would be invisible there).

def aiortc_participant(argv):
    import aiortc_calls
    from aiortc import RTCPeerConnection
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    connections = []
    original_init = RTCPeerConnection.__init__

    def init(self, *a, **k):
        original_init(self, *a, **k)
        connections.append(self)

    RTCPeerConnection.__init__ = init
    original_stats = RTCRtpReceiver.getStats

    async def get_stats(self):
        report = await original_stats(self)
        self._callsctl_packets = sum(getattr(x, "packetsReceived", 0) for x in report.values()
                                     if getattr(x, "type", "") == "inbound-rtp")
        return report

    RTCRtpReceiver.getStats = get_stats
    original_emit = aiortc_calls.emit

    def emit(obj):
        if obj.get("type") == "status" and connections:
            obj["slotPackets"] = {t.mid: getattr(t.receiver, "_callsctl_packets", None)
                                  for t in connections[-1].getTransceivers()
                                  if t.kind == "audio" and t.direction == "recvonly" and t.mid is not None}
        original_emit(obj)

    aiortc_calls.emit = emit
    sys.argv = [aiortc_calls.__file__, "participant"] + argv
    return aiortc_calls.main()


class Participant:
    """The aiortc participant child process and its JSON lines, each stamped with its arrival time (`_t`)."""

    def __init__(self, api, token, hz, timeout, log_path):
        cmd = [sys.executable, os.path.abspath(__file__), "aiortc-participant", "--api", str(api), "--token", token,
               "--hz", str(hz), "--timeout", str(timeout)]
        self.lines = []
        self.lock = threading.Lock()
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            obj["_t"] = time.time()
            with self.lock:
                self.lines.append(obj)

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def session(self):
        return next((o.get("sessionId") for o in self.snapshot() if o.get("type") == "joined"), None)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "leave"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (BrokenPipeError, ValueError, OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


# ----------------------------------------------------------------------------------------------------------

def run(args, summary, work):
    data_dir = os.path.join(work, "data")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    report_url = "http://127.0.0.1:%d/report" % receiver.server_address[1]
    serve, pulse, browsers, carol = None, None, [], None
    try:
        pulse, pulse_server = (None, "") if args.no_pulseaudio else start_pulseaudio(args.pulseaudio, work)
        if pulse_server is None:
            summary["error"] = "pulseaudio did not open its socket; see %s/pulseaudio.log" % work
            return finish(summary, 3)
        summary["pulseServer"] = pulse_server
        serve, api_port, serve_lines = start_serve(args, data_dir, work)
        summary["serveStdout"] = serve_lines
        if api_port is None:
            summary["error"] = "callsctl serve did not print 'api listening on'; see %s/serve.log" % work
            return finish(summary, 1)
        missing = page_missing(api_port)
        if missing:
            summary["error"] = "callsctl serve has no test page at /: %s" % missing
            return finish(summary, 3)

        def token(user):
            return subprocess.run(
                [args.callsctl, "token", "create", "--data-dir", data_dir, "--channel", CHANNEL, "--user", user,
                 "--ttl", "600"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()

        def page_url(user, own, others, options):
            return ("http://127.0.0.1:%d/?token=%s&autotest=%g&peers=2&expectSpeakers=2&ownHz=%d&expectHz=%s&report=%s&%s"
                    % (api_port, token(user), args.seconds, own, ",".join(str(h) for h in others), report_url, options))

        # alice: Chromium, shares the screen, checks that bob's audio stops after his mute.
        tone = os.path.join(work, "alice.wav")
        write_tone(tone, hz=ALICE_HZ, seconds=10)
        url = page_url("alice", ALICE_HZ, [BOB_HZ, CAROL_HZ], "share=1&fakescreen=1&expectMute=1")
        browsers.append(subprocess.Popen(
            chromium_command(args.chromium, tone, os.path.join(work, "profile-alice"), url),
            stdout=open(os.path.join(work, "chromium-alice.log"), "w"), stderr=subprocess.STDOUT,
            start_new_session=True))
        time.sleep(1)
        # bob: Firefox, decodes alice's screen, then mutes.
        url = page_url("bob", BOB_HZ, [ALICE_HZ, CAROL_HZ], "expectScreen=1&muteAfterScreen=1")
        home = os.path.join(work, "firefox-home")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, HOME=home, MOZ_CRASHREPORTER_DISABLE="1", MOZ_DISABLE_AUTO_SAFE_MODE="1")
        if pulse_server:
            env.update(PULSE_SERVER=pulse_server, XDG_RUNTIME_DIR=os.path.join(work, "pulse", "run"))
        else:
            env.pop("PULSE_SERVER", None)
        browsers.append(subprocess.Popen(
            firefox_command(args.firefox, os.path.join(work, "profile-bob"), url, args.firefox_hz), env=env,
            stdout=open(os.path.join(work, "firefox-bob.log"), "w"), stderr=subprocess.STDOUT, start_new_session=True))
        time.sleep(1)
        # carol: aiortc, stays until both pages have reported.
        carol = Participant(api_port, token("carol"), CAROL_HZ, args.timeout + 30, os.path.join(work, "aiortc-carol.log"))

        deadline = time.time() + args.timeout
        while len(Receiver.reports) < 2 and time.time() < deadline:
            Receiver.event.wait(1)
            Receiver.event.clear()
            if carol.proc.poll() is not None:
                break
        pages = identify(Receiver.reports)
        # carol's mute check needs her status lines up to 3.5 s after bob's mute (the pages wait that long too).
        bob_id = (pages.get("bob") or {}).get("sessionId")
        muted = mute_event(carol.snapshot(), bob_id)
        while muted and time.time() < min(deadline, muted["_t"] + 8) and carol.proc.poll() is None:
            if any(o.get("type") == "status" and o["_t"] > muted["_t"] + 3.6 for o in carol.snapshot()):
                break
            time.sleep(0.2)
        summary["metrics"] = scrape(api_port)
        summary["pages"] = {u: compact(p) for u, p in pages.items()}
        lines = carol.snapshot()
        summary["carol"] = {"session": carol.session(), "exit": carol.proc.poll(),
                            "messages": [o for o in lines if o.get("type") not in ("status", "speakers")][-12:],
                            "lastStatus": next((o for o in reversed(lines) if o.get("type") == "status"), None)}
        if len(pages) < 2:
            summary["error"] = "only %d of 2 pages reported within %g s (%s); see %s/chromium-alice.log, firefox-bob.log" % (
                len(pages), args.timeout, ", ".join(pages) or "none", work)
            judge(summary, pages, lines)
            return finish(summary, 1)
        return finish(summary, judge(summary, pages, lines))
    finally:
        if carol is not None:
            carol.stop()
        stop_processes(browsers, serve, summary)
        if pulse is not None:
            try:
                os.killpg(pulse.pid, signal.SIGTERM)
                pulse.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(pulse.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pulse.wait()
        receiver.shutdown()
        if not args.keep:
            for name in ("profile-alice", "profile-bob", "firefox-home"):
                shutil.rmtree(os.path.join(work, name), ignore_errors=True)


def page_missing(port):
    """None when GET / serves the page; else the server's message (a binary without its resources folder)."""
    import urllib.error
    import urllib.request
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read()
        return None
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        return body if e.code == 500 and "page_missing" in body else None
    except OSError as e:
        return str(e)


def serve_warnings(path):
    """serve's log lines above info (and its rejected offer sections), the last 20."""
    try:
        with open(path) as f:
            lines = [l.rstrip() for l in f if re.match(r"\d{4}-\d\d-\d\dT\S+ (?!info |debug |trace )\w+ ", l)
                     or "rejected" in l]
    except OSError:
        return []
    return lines[-20:]


def identify(reports):
    """{user: report}: a page's user is the one its own `joined` event names; else by its role in the test."""
    pages = {}
    for report in reports:
        user = next((e.get("user") for e in report.get("events", []) if e.get("participant") == report.get("sessionId")), None)
        if user is None:
            user = "bob" if report.get("mutedMyself") else "alice" if report.get("screenShared") else None
        pages[user or "?%d" % len(pages)] = report
    return pages


def mute_event(lines, participant):
    return next((o for o in lines if o.get("type") == "event" and o.get("event") == "muted"
                 and participant and o.get("participant") == participant), None)


def judge(summary, pages, carol_lines):
    checks = summary["checks"]

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    tones = {"alice": ALICE_HZ, "bob": BOB_HZ, "carol": CAROL_HZ}
    carol_id = next((o.get("sessionId") for o in carol_lines if o.get("type") == "joined"), None)
    session_of = {u: p.get("sessionId") for u, p in pages.items()}
    session_of["carol"] = carol_id
    user_of = {s: u for u, s in session_of.items() if s}

    # The two pages.
    for user in ("alice", "bob"):
        page = pages.get(user)
        if page is None:
            check("%s's page reported" % user, False, None)
            continue
        slots = [h for h in (page.get("heard") or {}).values() if h.get("participant")]
        heard = {user_of.get(h.get("participant"), h.get("user")): h.get("hz") for h in slots}
        check("%s heard each other participant in a slot of its own" % user, len(slots) == len(heard) == 2, page.get("heard"))
        seen = set(page.get("speakersSeen") or [])
        others = {s for u, s in session_of.items() if u != user and s}
        check("%s's speakers map named the two others and never itself" % user,
              seen == others and session_of[user] not in seen, {"seen": sorted(seen), "others": sorted(others)})
        for other, hz in tones.items():
            if other != user:
                got = heard.get(other)
                check("%s hears %s's %d Hz" % (user, other, hz), got is not None and abs(got - hz) <= TOLERANCE, got)
        own = [u for u, h in heard.items() if h is not None and abs(h - tones[user]) <= TOLERANCE]
        check("%s does not hear its own %d Hz" % (user, tones[user]), not own, heard)
        check("%s page verdict" % user, page.get("ok"), page.get("error"))
    frames = (pages.get("bob") or {}).get("framesDecoded") or 0
    check("Firefox (bob) decodes Chromium's (alice's) screen: at least 10 frames", frames >= 10, frames)
    check("Firefox (bob) muted itself after the screen check", (pages.get("bob") or {}).get("mutedMyself"),
          (pages.get("bob") or {}).get("mutedMyself"))
    m = (pages.get("alice") or {}).get("muteCheck") or {}
    check("Chromium (alice) stops receiving Firefox's audio after the mute",
          m.get("user") == "bob" and m.get("packetsAt1s") is not None and m.get("packetsAt1s") == m.get("packetsAt3_5s")
          and m.get("stillInSlot") is None, m)

    # carol (aiortc): status lines {"hz": {participant: Hz}, "packets", "slots", "slotPackets"}.
    statuses = [o for o in carol_lines if o.get("type") == "status"]
    check("carol (aiortc) joined", carol_id, carol_id)
    for other in ("alice", "bob"):
        pid, hz = session_of.get(other), tones[other]
        got = [s["hz"].get(pid) for s in statuses if pid and (s.get("hz") or {}).get(pid) is not None]
        check("carol hears %s's %d Hz" % (other, hz), any(abs(h - hz) <= TOLERANCE for h in got),
              {"last": got[-3:]})
    own = sorted({(p, h) for s in statuses for p, h in (s.get("hz") or {}).items()
                  if h is not None and (p == carol_id or abs(h - CAROL_HZ) <= TOLERANCE)})
    check("carol does not hear her own %d Hz" % CAROL_HZ, not own, own)
    seen = {sl.get("participant") for o in carol_lines if o.get("type") == "speakers"
            for sl in o.get("slots") or [] if sl.get("participant")}
    others = {session_of.get("alice"), session_of.get("bob")}
    check("carol's speakers map named the two others and never her", seen == others and carol_id not in seen,
          {"seen": sorted(x for x in seen if x), "others": sorted(x for x in others if x)})
    check("carol got no errors", not [o for o in carol_lines if o.get("type") in ("error", "closed", "crash")],
          [o for o in carol_lines if o.get("type") in ("error", "closed", "crash")])

    bob_id = session_of.get("bob")
    muted = mute_event(carol_lines, bob_id)
    detail = {"mutedEvent": bool(muted)}
    ok = False
    if muted:
        at = muted["_t"]
        # The slot that carried bob last before the mute.
        mid = None
        for o in carol_lines:
            if o["_t"] > at:
                break
            if o.get("type") == "speakers":
                mid = next((str(sl.get("mid")) for sl in o.get("slots") or [] if sl.get("participant") == bob_id), mid)

        def packets(offset):
            s = [o for o in statuses if o["_t"] <= at + offset]
            return (s[-1].get("slotPackets") or {}).get(mid) if s and mid is not None else None

        before, at1, at35 = packets(-2), packets(1), packets(3.5)
        after = [o for o in carol_lines if o["_t"] > at + 1 and o.get("type") == "speakers"]
        last_map = after[-1] if after else next((o for o in reversed(carol_lines) if o.get("type") == "speakers"), None)
        still = [sl.get("mid") for sl in (last_map or {}).get("slots") or [] if sl.get("participant") == bob_id]
        detail.update({"mid": mid, "packetsBefore2s": before, "packetsAt1s": at1, "packetsAt3_5s": at35,
                       "stillInSlot": still or None,
                       "statusAfter3_5s": any(o["_t"] > at + 3.5 for o in statuses)})
        ok = (mid is not None and at1 is not None and at35 is not None and before is not None and at1 > before
              and at1 == at35 and not still and detail["statusAfter3_5s"])
    check("aiortc (carol) stops receiving Firefox's audio after the mute (bob's slot counter stands still)", ok, detail)

    m = summary.get("metrics") or {}
    check("server forwarded audio and screen packets",
          m.get('callsctl_forwarded_packets_total{kind="audio"}', 0) > 0
          and m.get('callsctl_forwarded_packets_total{kind="video"}', 0) > 0,
          {k: v for k, v in m.items() if "forwarded" in k})
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
