#!/usr/bin/env python3
"""A call of three STOCK aiortc clients through `callsctl serve`, as a developer would write them from
docs/protocol.md with aiortc's defaults.

    aiortc_stock.py --callsctl BIN [--keep DIR]      run the scenario, print one JSON document
    aiortc_stock.py participant --api PORT --token T --hz F        (one participant; used by the scenario)

Scenario: alice, bob and carol (tones 440, 660, 880 Hz; screens red, blue, green) join one call.
  1. everyone hears the two others (dominant frequency of each audio slot, mapped to participants through the
     `speakers` messages);
  2. alice presents a VP8 video track; bob and carol decode its frames (red);
  3. alice stops; bob presents; alice and carol decode bob's frames (blue) -- carol's video receive slot is the
     one that carried alice's SSRC, alice receives on a new transceiver;
  4. carol leaves and joins again (while bob presents); alice and bob hear her again, she hears them and
     decodes bob's screen;
  5. bob stops; carol presents; alice and bob decode her frames (green): alice's and bob's video receive slots
     now carry a third SSRC, and bob also holds his own (inactive) sendonly screen section.
Exit: 0 pass, 1 fail, 3 could not run (no aiortc/numpy). Loopback only. Every wait is bounded.

The participant is stock aiortc 1.16: `RTCPeerConnection()` with the default `RTCConfiguration` (bundlePolicy
"balanced", so the first video transceiver gets a transport of its own until the answer's BUNDLE group folds
it into the first one; aiortc puts every section in the offer's BUNDLE group). What it does, all from
docs/protocol.md:
  - microphone: `pc.addTrack(tone)` (a sendrecv audio section; the server answers it recvonly);
  - receive slots: `addTransceiver(kind, direction="recvonly")` until it has `audioSlots` / `videoSlots`
    recvonly transceivers of each kind (from `joined`, then from every `renegotiate`), then createOffer /
    setLocalDescription / send `offer`; a `renegotiate` that arrives while an offer is outstanding is
    answered by a new offer after the answer. Transceivers are never removed or retired: a section the
    server answers `inactive` stays as it is and is reused by the server later;
  - screen: `screen_start`; on `screen_ok` `addTransceiver(screen, direction="sendonly")` and offer. To stop:
    `screen_stop`, `screen.stop()` (ends the track, so aiortc's sender stops sending), the transceiver's
    direction set to "inactive", and a new offer (protocol.md: the client offers whenever its sections
    change). When it later views someone else's screen it adds a new recvonly video transceiver (the count
    rule above counts recvonly ones only);
  - `track` events: each received track is read (`track.recv()`) until it ends.
Non-default things, and why:
  - `aioice.ice.get_host_addresses` returns only 127.0.0.1 (aioice skips loopback when gathering; the
    server listens on loopback here). Unavoidable on a loopback-only machine.
  - Observation only (does not change what aiortc does): `RtpRouter.route_rtp` is wrapped to count, per
    (SSRC, payload type), packets routed to a receiver and packets it discarded, so that the report can show
    what aiortc's demultiplexer did with each server stream. Offers and answers are printed in full.
The participant prints JSON lines on stdout: every server message, `sdp` lines, and a `status` line each
second; it takes `{"cmd": "leave"|"share"|"unshare"}` on stdin.
"""
import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aiortc_calls import Checks, Peer, Serve, WebSocket, emit, finish, participant_main  # noqa: E402

COLORS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
COLOR_OF_HZ = {440: "red", 660: "blue", 880: "green"}


def color_of(hz):
    return COLOR_OF_HZ.get(int(round(hz)), "red")


# ----------------------------------------------------------------------------------------------------------
# Participant (a child process): a stock aiortc client.

async def participant(args):
    import aioice.ice
    import av
    import numpy as np
    from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from aiortc import rtcdtlstransport
    from aiortc_echo_client import sine_track

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

    # Observation only: what aiortc's RTP demultiplexer does with each (SSRC, payload type).
    routed, dropped = {}, {}
    original_route = rtcdtlstransport.RtpRouter.route_rtp

    def route_rtp(self, packet):
        receiver = original_route(self, packet)
        key = "%d/%d" % (packet.ssrc, packet.payload_type)
        table = routed if receiver is not None else dropped
        table[key] = table.get(key, 0) + 1
        return receiver

    rtcdtlstransport.RtpRouter.route_rtp = route_rtp

    class ScreenTrack(VideoStreamTrack):
        """A 'screen': 320x240 frames of one colour with a moving bar, 30 per second."""

        def __init__(self, rgb):
            super().__init__()
            self.rgb, self.n = rgb, 0

        async def recv(self):
            pts, time_base = await self.next_timestamp()
            img = np.empty((240, 320, 3), np.uint8)
            img[:] = self.rgb
            x = (self.n * 4) % 300
            img[:, x:x + 20] = (128, 128, 128)
            self.n += 1
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    ws = await WebSocket.connect("127.0.0.1", args.api)
    await ws.send({"v": 2, "type": "join", "token": args.token})
    pc = None
    speaker_of = {}       # audio slot mid -> participant (from the last `speakers`)
    received = {}         # participant -> [(rate, mono)] of the last 3 s
    video = {}            # mid -> {colour: decoded frames}
    state = {"offering": False, "again": False, "want": {"audio": 0, "video": 0}, "screen": None, "tracks": []}

    def classify(rgb):
        r, g, b = (float(v) for v in rgb)
        for name, (cr, cg, cb) in COLORS.items():
            if abs(r - cr) < 70 and abs(g - cg) < 70 and abs(b - cb) < 70:
                return name
        return "other"

    async def read_audio(mid, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            who = speaker_of.get(mid)
            if who is None:
                continue
            data = frame.to_ndarray().reshape(-1)
            channels = len(frame.layout.channels)
            mono = data[::channels] if channels > 1 else data
            buf = received.setdefault(who, [])
            buf.append((frame.sample_rate, mono.astype(np.float64)))
            del buf[:-150]

    async def read_video(mid, track):
        counts = video.setdefault(mid, {})
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            img = frame.to_ndarray(format="rgb24")
            c = classify(img[:, :, :].reshape(-1, 3)[::7].mean(axis=0))
            counts[c] = counts.get(c, 0) + 1

    def dominant(chunks):
        if not chunks:
            return None
        rate = chunks[0][0]
        x = np.concatenate([c for _, c in chunks[-100:]])
        if len(x) < 4800 or np.sqrt(np.mean(x * x)) < 50:
            return None
        x = x - x.mean()
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        return round(float(np.fft.rfftfreq(len(x), 1.0 / rate)[int(np.argmax(spectrum[1:])) + 1]), 1)

    def on_track(track):
        for t in pc.getTransceivers():
            if t.receiver.track is track:
                emit({"type": "track", "kind": track.kind, "mid": t.mid})
                reader = read_audio if track.kind == "audio" else read_video
                state["tracks"].append(asyncio.ensure_future(reader(t.mid, track)))
                return

    async def negotiate():
        if state["offering"]:
            state["again"] = True
            return
        state["offering"] = True
        for kind in ("audio", "video"):
            have = sum(1 for t in pc.getTransceivers() if t.kind == kind and t.direction == "recvonly")
            for _ in range(have, state["want"][kind]):
                pc.addTransceiver(kind, direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "sdp", "dir": "offer", "sdp": pc.localDescription.sdp})
        await ws.send({"type": "offer", "sdp": pc.localDescription.sdp})

    async def on_answer(sdp):
        emit({"type": "sdp", "dir": "answer", "sdp": sdp})
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as e:
            emit({"type": "crash", "where": "setRemoteDescription", "error": repr(e)})
        state["offering"] = False
        if state["again"]:
            state["again"] = False
            await negotiate()

    async def status_loop():
        while True:
            await asyncio.sleep(1)
            if pc is None:
                continue
            try:
                emit({"type": "status", "hz": {w: dominant(c) for w, c in received.items()},
                      "slots": dict(speaker_of), "video": {m: dict(c) for m, c in video.items()},
                      "routed": dict(routed), "dropped": dict(dropped), "ice": pc.iceConnectionState,
                      "connection": pc.connectionState,
                      "transceivers": [[t.mid, t.kind, t.direction, t.currentDirection]
                                       for t in pc.getTransceivers()]})
            except Exception as e:
                emit({"type": "crash", "where": "status", "error": repr(e)})

    async def commands():
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return "eof"
            cmd = json.loads(line).get("cmd")
            if cmd == "leave":
                await ws.send({"type": "leave"})
                return "leave"
            if cmd == "share":
                await ws.send({"type": "screen_start"})
            if cmd == "unshare":
                await ws.send({"type": "screen_stop"})
                screen = state["screen"]
                if screen is not None:
                    state["screen"] = None
                    screen.sender.track.stop()
                    screen.direction = "inactive"
                    await negotiate()

    async def messages():
        nonlocal pc
        while True:
            m = await ws.recv()
            if m is None:
                emit({"type": "socket_closed"})
                return
            emit(m)
            t = m.get("type")
            if t == "joined":
                pc = RTCPeerConnection()
                pc.on("track", on_track)
                pc.addTrack(sine_track(args.hz))
                state["want"] = {"audio": m.get("audioSlots", 0), "video": m.get("videoSlots", 0)}
                await negotiate()
            elif t == "renegotiate":
                state["want"] = {"audio": m.get("audioSlots", 0), "video": m.get("videoSlots", 0)}
                await negotiate()
            elif t == "answer":
                await on_answer(m["sdp"])
            elif t == "error" and state["offering"]:
                state["offering"] = False
            elif t == "screen_ok":
                state["screen"] = pc.addTransceiver(ScreenTrack(COLORS[color_of(args.hz)]), direction="sendonly")
                await negotiate()
            elif t == "speakers":
                speaker_of.clear()
                for slot in m.get("slots") or []:
                    if slot.get("mid") is not None:
                        speaker_of[str(slot["mid"])] = slot.get("participant")
            elif t == "left":
                return

    status = asyncio.ensure_future(status_loop())
    cmd = asyncio.ensure_future(commands())
    msgs = asyncio.ensure_future(messages())
    await asyncio.wait([cmd, msgs], timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
    if cmd.done() and cmd.result() == "leave":
        await asyncio.wait([msgs], timeout=5)
    status.cancel()
    for task in state["tracks"]:
        task.cancel()
    if pc is not None:
        try:
            await asyncio.wait_for(pc.close(), 10)
        except Exception:
            pass
    ws.close()
    emit({"type": "exit"})


# ----------------------------------------------------------------------------------------------------------
# The scenario (the orchestrator)

def frames(peer, colour):
    """Decoded frames of one colour, over all video slots, in the peer's last status line."""
    s = peer.last_status() or {}
    return sum(c.get(colour, 0) for c in (s.get("video") or {}).values())


def wait_frames(peer, colour, since, n=10, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = frames(peer, colour) - since
        if got >= n:
            return got
        if peer.proc.poll() is not None:
            break
        time.sleep(0.3)
    return None


def diag(peer):
    s = peer.last_status() or {}
    return {k: s.get(k) for k in ("video", "routed", "dropped", "transceivers", "ice", "connection")}


def scenario(ctx, check):
    alice, bob, carol = ctx.peer("alice", 440), ctx.peer("bob", 660), ctx.peer("carol", 880)
    for p in (alice, bob, carol):
        check("%s joins" % p.name, p.first("joined"), p.lines[-2:])
    for p in (alice, bob, carol):
        check("%s connects" % p.name, p.first("connected", 30), p.lines[-3:])
    for p in (alice, bob, carol):
        for o in (alice, bob, carol):
            if o is not p:
                check("%s hears %s" % (p.name, o.name), p.hears(o, 30), (p.last_status() or {}).get("hz"))

    # alice presents
    alice.command("share")
    check("alice gets screen_ok", alice.first("screen_ok", 10), alice.lines[-3:])
    for p in (bob, carol):
        got = wait_frames(p, "red", 0, timeout=30)
        check("%s decodes alice's screen" % p.name, got, diag(p))
    # alice stops, bob presents
    alice.command("unshare")
    for p in (bob, carol):
        check("%s sees screen_off" % p.name,
              p.wait_for(lambda o: o.get("type") == "event" and o.get("event") == "screen_off", 10))
    time.sleep(1.5)
    base = {p.name: frames(p, "blue") for p in (alice, carol)}
    bob.command("share")
    check("bob gets screen_ok", bob.wait_for(lambda o: o.get("type") == "screen_ok", 10), bob.lines[-3:])
    for p in (alice, carol):
        got = wait_frames(p, "blue", base[p.name], timeout=30)
        check("%s decodes bob's screen" % p.name, got, diag(p))
    for p, others in ((alice, (bob, carol)), (bob, (alice, carol)), (carol, (alice, bob))):
        for o in others:
            check("%s still hears %s while bob presents" % (p.name, o.name), p.hears(o, 10),
                  (p.last_status() or {}).get("hz"))

    # carol leaves and joins again
    carol_id = carol.session
    carol.leave()
    for p in (alice, bob):
        check("%s sees carol leave" % p.name, p.wait_for(lambda o: o.get("type") == "event" and o.get("event") == "left"
                                                         and o.get("participant") == carol_id, 10))
    carol2 = ctx.peer("carol", 880)
    ctx.names[carol2] = "carol (again)"
    check("carol joins again", carol2.first("joined"), carol2.lines[-2:])
    check("carol connects again", carol2.first("connected", 30), carol2.lines[-3:])
    for p in (alice, bob):
        check("%s hears carol again" % p.name, p.hears(carol2, 30), (p.last_status() or {}).get("hz"))
    for o in (alice, bob):
        check("carol (again) hears %s" % o.name, carol2.hears(o, 30), (carol2.last_status() or {}).get("hz"))
    check("carol (again) decodes bob's screen", wait_frames(carol2, "blue", 0, timeout=30), diag(carol2))
    # bob stops, carol (again) presents: alice's and bob's video receive slots get a third SSRC
    bob.command("unshare")
    for p in (alice, carol2):
        check("%s sees bob's screen_off" % p.name, p.wait_for(
            lambda o: o.get("type") == "event" and o.get("event") == "screen_off"
            and o.get("participant") == bob.session, 10))
    time.sleep(1.5)
    base = {p.name: frames(p, "green") for p in (alice, bob)}
    carol2.command("share")
    check("carol (again) gets screen_ok", carol2.wait_for(lambda o: o.get("type") == "screen_ok", 10),
          carol2.lines[-3:])
    for p in (alice, bob):
        check("%s decodes carol's screen" % p.name, wait_frames(p, "green", base[p.name], timeout=30), diag(p))
    errors = [(p.name, e) for p in (alice, bob, carol, carol2) for e in p.errors()]
    check("no errors or closed sessions", not errors, errors)
    crashes = [(p.name, o) for p in (alice, bob, carol, carol2) for o in p.lines if o.get("type") == "crash"]
    check("no client exceptions", not crashes, crashes)


class Context:
    def __init__(self, serve):
        self.serve, self.peers, self.names = serve, [], {}

    def peer(self, name, hz):
        p = Peer(os.path.abspath(__file__), self.serve, name, hz)
        self.peers.append(p)
        return p


def run(args):
    try:
        import aiortc  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        print(json.dumps({"ok": False, "error": "aiortc and numpy are not installed (pip install aiortc numpy)"}))
        return 3
    if not os.access(args.callsctl, os.X_OK):
        print(json.dumps({"ok": False, "error": "no callsctl binary at %s" % args.callsctl}))
        return 3
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-aiortc-stock-")
    os.makedirs(work, exist_ok=True)
    check = Checks()
    summary = {"scenario": "stock-aiortc", "work": work}
    serve = ctx = None
    try:
        try:
            serve = Serve(args.callsctl, work)
        except Exception as e:
            print(json.dumps({"ok": False, "error": "serve did not start: %r" % e, "work": work}))
            return 3
        ctx = Context(serve)
        scenario(ctx, check)
    except Exception as e:
        check("scenario ran", False, repr(e))
    finally:
        if ctx:
            for p in ctx.peers:
                p.kill()
            summary["peers"] = {}
            for p in ctx.peers:
                name = ctx.names.get(p, p.name)
                with open(os.path.join(work, re.sub(r"\W+", "_", name) + ".jsonl"), "w") as f:
                    for o in p.lines:
                        f.write(json.dumps(o) + "\n")
                summary["peers"][name] = {"session": p.session, "last": diag(p)}
            # What aiortc's RtpRouter discarded (SSRC/payload type -> packets), per participant: a stream the
            # router cannot place shows up here (a few packets at a start are the race between the server's first
            # packets and RTCRtpReceiver.receive() registering the receiver after setRemoteDescription).
            summary["routerDrops"] = {ctx.names.get(p, p.name): (p.last_status() or {}).get("dropped")
                                      for p in ctx.peers}
        if serve:
            summary["serveExit"] = serve.stop()
    return finish(summary, check, work, args.keep)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "participant":
        return participant_main(participant, timeout=240)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--keep", help="keep logs (serve.log, one .jsonl per participant) in this folder")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
