#!/usr/bin/env python3
"""Scripted call scenarios on a real `callsctl serve` with aiortc participants.

    aiortc_calls.py --callsctl BIN SCENARIO       run one scenario, print one JSON document
    aiortc_calls.py participant --api PORT --token T [--hz F] [--channel C]    (used by the scenarios)

Scenarios:
  churn                  alice and bob stay; carol joins and leaves three times; alice and bob keep hearing
                         each other, see carol come and go, and get no errors
  disabled               `callsctl channel disable`: a member and an admin are both refused
  testmode               `callsctl channel testmode on`, channel unset: a member is refused, an admin joins
  disabled-while-running alice is in the call; the channel is disabled; bob still joins the running call and
                         hears alice; after both leave, a new call is refused
  limit                  serve --max-participants 2: the third is refused with call_full, joins when one leaves
  wrong-channel          a join naming another channel than its token's is refused with bad_token
  vanish                 carol is killed (SIGKILL) mid-call; alice and bob see her leave and keep talking
  send-error             (in a private network namespace) nftables makes every datagram the server sends to
                         carol fail with EPERM; alice and bob must keep hearing each other

A participant speaks over the signaling WebSocket (a small stdlib client, protocol version 2), publishes a sine
tone, offers the server's audio slots (`joined.audioSlots`; more when the server asks with `renegotiate`), and
prints JSON lines: every server message it gets, and a `status` line each second with packets and dominant
frequency per remote participant. Audio arrives in the listener's fixed audio slots (one track each, a constant
server SSRC, `a=msid` names only the slot); which participant a slot carries comes from the `speakers` messages
(mid -> participant), so frames and packets of a slot count for the participant the last map put there.
At most audioSlots + 1 (4 by default) speakers are ranked and a listener hears at most 3 others; every scenario
here has at most 3 talkers, so every listener hears everyone else. On stdin it takes
`{"cmd": "leave"}`, `{"cmd": "mute"}`, `{"cmd": "unmute"}`.

Exit: 0 pass, 1 fail, 3 could not run (no aiortc). Needs `pip install aiortc numpy`. Loopback only.
"""
import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CHANNEL = "4xp9fdt3pbdp7nrw7xjmrd8kkc"
OTHER_CHANNEL = "zzzzzzzzzzzzzzzzzzzzzzzzzz"


# ----------------------------------------------------------------------------------------------------------
# A minimal WebSocket client (RFC 6455): text frames, masking, ping/pong, close.

class WebSocket:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host, port, path="/ws"):
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError("no WebSocket upgrade: %r" % head[:200])
        return cls(reader, writer)

    async def send(self, obj):
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        await self.writer.drain()

    async def recv(self):
        """The next text message as an object; None when the connection closed."""
        while True:
            try:
                h = await self.reader.readexactly(2)
                n = h[1] & 0x7F
                if n == 126:
                    n = struct.unpack(">H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
                payload = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            opcode = h[0] & 0x0F
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                return None
            if opcode == 9:
                mask = os.urandom(4)
                self.writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask +
                                  bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self):
        self.writer.close()


# ----------------------------------------------------------------------------------------------------------
# Participant (a child process)

def emit(obj):
    print(json.dumps(obj), flush=True)


async def participant(args):
    import aioice.ice
    import numpy as np
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc_echo_client import sine_track

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

    ws = await WebSocket.connect("127.0.0.1", args.api)
    join = {"v": 2, "type": "join", "token": args.token}
    if args.channel:
        join["channel"] = args.channel
    await ws.send(join)
    pc = None
    speaker_of = {}       # slot mid -> participant id (None while the slot is free), from the last `speakers`
    received = {}         # participant id -> list of (rate, mono samples)
    packets_of = {}       # participant id -> audio packets received in a slot while the map put it there
    slot_packets = {}     # slot mid -> packetsReceived at the last status line
    tracks = {}           # mid -> recording task
    state = {"negotiating": False, "again": False, "want": 0}

    async def record(mid, track):
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
            del buf[:-150]   # keep the last 3 s

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

    async def negotiate():
        if state["negotiating"]:
            state["again"] = True
            return
        state["negotiating"] = True
        have = sum(1 for t in pc.getTransceivers() if t.kind == "audio" and t.direction == "recvonly")
        for _ in range(have, state["want"]):
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        ports = sorted({int(x) for x in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host",
                                                 pc.localDescription.sdp, re.I)})
        emit({"type": "local", "udpPorts": ports})
        await ws.send({"type": "offer", "sdp": pc.localDescription.sdp})

    async def on_answer(sdp):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        for t in pc.getTransceivers():
            if t.kind != "audio" or t.direction != "recvonly":
                continue
            if t.currentDirection == "inactive" and t.mid in tracks:
                # aiortc does not restart a receiver once its section went inactive (Chromium does), so a slot
                # the server emptied is retired here and later tracks get fresh transceivers.
                t.direction = "inactive"
                tracks.pop(t.mid).cancel()
            elif t.currentDirection == "recvonly" and t.mid not in tracks:
                tracks[t.mid] = asyncio.ensure_future(record(t.mid, t.receiver.track))
        state["negotiating"] = False
        if state["again"]:
            state["again"] = False
            await negotiate()

    async def status_loop():
        try:
            await status_loop_body()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            emit({"type": "crash", "where": "status", "error": repr(e)})

    async def status_loop_body():
        while True:
            await asyncio.sleep(1)
            if pc is None:
                continue
            # A slot's counter spans its speakers: what arrived since the last line counts for the participant the
            # speakers map puts in the slot now.
            for t in pc.getTransceivers():
                if t.kind != "audio" or t.direction != "recvonly" or t.mid is None:
                    continue
                stats = await t.receiver.getStats()
                n = sum(getattr(x, "packetsReceived", 0) for x in stats.values()
                        if getattr(x, "type", "") == "inbound-rtp")
                delta = n - slot_packets.get(t.mid, 0)
                slot_packets[t.mid] = n
                who = speaker_of.get(t.mid)
                if who and delta > 0:
                    packets_of[who] = packets_of.get(who, 0) + delta
            emit({"type": "status", "hz": {w: dominant(c) for w, c in received.items()}, "packets": dict(packets_of),
                  "slots": dict(speaker_of), "ice": pc.iceConnectionState})

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
            if cmd in ("mute", "unmute"):
                await ws.send({"type": cmd})

    hops = [0]

    async def messages():
        nonlocal pc, ws
        while True:
            m = await ws.recv()
            if m is None:
                emit({"type": "socket_closed"})
                return
            emit(m)
            t = m.get("type")
            if t == "redirect":
                # A cluster: the channel's call runs on another node; join there with the same token (3 hops at most).
                hops[0] += 1
                target = urllib.parse.urlsplit(m.get("ws", ""))
                if hops[0] > 3 or target.scheme != "ws" or target.path != "/ws" or not target.port:
                    emit({"type": "redirect_refused", "ws": m.get("ws"), "hops": hops[0]})
                    return
                ws.close()
                ws = await WebSocket.connect(target.hostname, target.port)
                await ws.send(join)
                continue
            if t == "joined":
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                pc.addTransceiver(sine_track(args.hz), direction="sendonly")
                state["want"] = m.get("audioSlots", 0)
                await negotiate()
            elif t == "renegotiate":
                state["want"] = max(state["want"], m.get("audioSlots", 0))
                await negotiate()
            elif t == "answer":
                await on_answer(m["sdp"])
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
    for task in tracks.values():
        task.cancel()
    if pc is not None:
        await pc.close()
    ws.close()
    emit({"type": "exit"})


# ----------------------------------------------------------------------------------------------------------
# Scenarios (the orchestrator)

class Serve:
    def __init__(self, callsctl, work, extra=()):
        self.callsctl, self.data = callsctl, os.path.join(work, "data")
        self.log = open(os.path.join(work, "serve.log"), "w")
        self.proc = subprocess.Popen(
            [callsctl, "serve", "--data-dir", self.data, "--api-listen", "127.0.0.1:0",
             "--rtc-listen", "127.0.0.1:0"] + list(extra),
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=dict(os.environ, NO_COLOR="1"))
        self.api = None
        self.rtc_udp = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("api listening on "):
                self.api = int(line.rsplit(":", 1)[1])
            m = re.match(r"rtc listening on .*:(\d+)/udp", line)
            if m:
                self.rtc_udp = int(m.group(1))
            if line.startswith("data directory:"):
                break
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        if self.api is None:
            raise RuntimeError("callsctl serve did not start; see %s" % self.log.name)

    def cli(self, *args):
        r = subprocess.run([self.callsctl] + list(args) + ["--data-dir", self.data], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("callsctl %s failed: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout.strip()

    def token(self, user, admin=False, channel=CHANNEL):
        args = ["token", "create", "--channel", channel, "--user", user, "--ttl", "600"]
        if admin:
            args += ["--role", "admin"]
        return self.cli(*args)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "killed"


class Peer:
    """One participant child process and what it printed."""

    def __init__(self, script, serve, name, hz, token=None, channel=None, admin=False):
        self.name, self.hz, self.lines = name, hz, []
        cmd = [sys.executable, script, "participant", "--api", str(serve.api),
               "--token", token or serve.token(name, admin=admin), "--hz", str(hz)]
        if channel:
            cmd += ["--channel", channel]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.lines.append(obj)
                self.cond.notify_all()

    def wait_for(self, pred, timeout=20):
        """The first line (from the start) matching pred, or None after timeout."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for obj in self.lines:
                    if pred(obj):
                        return obj
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None and not any(pred(o) for o in self.lines):
                    if left <= 0 or self.proc.poll() is not None:
                        return None
                self.cond.wait(min(left, 0.5))

    def first(self, type_, timeout=20):
        return self.wait_for(lambda o: o.get("type") in (type_, "error") if type_ != "error" else o.get("type") == "error",
                             timeout)

    def last_status(self):
        with self.cond:
            return next((o for o in reversed(self.lines) if o.get("type") == "status"), None)

    def hears(self, other, timeout=20):
        """Waits until a status line shows `other`'s tone; returns the frequency or None."""
        pid = other.session
        o = self.wait_for(lambda s: s.get("type") == "status" and s.get("hz", {}).get(pid) is not None
                          and abs(s["hz"][pid] - other.hz) <= 25, timeout)
        return o["hz"][pid] if o else None

    def latest_slots(self):
        """The participants of the last `speakers` message ({mid: participant}), or None before the first."""
        with self.cond:
            m = next((o for o in reversed(self.lines) if o.get("type") == "speakers"), None)
        return None if m is None else {s.get("mid"): s.get("participant") for s in m.get("slots") or []}

    def wait_slots(self, pred, timeout=20):
        """Waits until the last `speakers` message satisfies pred({mid: participant}); returns it or None."""
        deadline = time.time() + timeout
        while True:
            slots = self.latest_slots()
            if slots is not None and pred(slots):
                return slots
            if time.time() >= deadline or self.proc.poll() is not None:
                return None
            time.sleep(0.2)

    def speakers_seen(self):
        """Every participant any `speakers` message put into one of this participant's slots."""
        with self.cond:
            return {s.get("participant") for o in self.lines if o.get("type") == "speakers"
                    for s in o.get("slots") or [] if s.get("participant")}

    @property
    def session(self):
        j = next((o for o in self.lines if o.get("type") == "joined"), None)
        return j and j.get("sessionId")

    def errors(self):
        return [o for o in self.lines if o.get("type") in ("error", "closed")]

    def events_of(self, type_):
        with self.cond:
            return [o for o in self.lines if o.get("type") == type_]

    def events(self, name):
        return [o for o in self.lines if o.get("type") == "event" and o.get("event") == name]

    def command(self, cmd):
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def leave(self):
        self.command("leave")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Checks:
    def __init__(self):
        self.items = []

    def __call__(self, name, ok, detail=None):
        self.items.append({"check": name, "ok": bool(ok), "detail": detail})
        return ok

    @property
    def ok(self):
        return all(c["ok"] for c in self.items)


def refused(peer, code, timeout=20):
    o = peer.first("error", timeout)
    return o if o and o.get("code") == code else None


def scenario_churn(ctx, check):
    alice, bob = ctx.peer("alice", 440), ctx.peer("bob", 660)
    check("alice joins", alice.first("joined"))
    check("bob joins", bob.first("joined"))
    check("alice hears bob", alice.hears(bob, 30), alice.last_status())
    check("bob hears alice", bob.hears(alice, 30), bob.last_status())
    slots = alice.latest_slots() or {}
    check("alice has the server's 3 audio slots, all negotiated", len(slots) == 3 and None not in slots, slots)
    for round_ in range(3):
        carol = ctx.peer("carol", 880)
        check("carol joins (round %d)" % (round_ + 1), carol.first("joined"))
        check("alice hears carol (round %d)" % (round_ + 1), alice.hears(carol, 30))
        carol_id = carol.session
        check("alice's speakers map puts carol in a slot (round %d)" % (round_ + 1),
              alice.wait_slots(lambda m: carol_id in m.values(), 5), alice.latest_slots())
        before = (alice.last_status() or {}).get("packets", {}).get(bob.session, 0)
        carol.leave()
        time.sleep(1.5)
        after = (alice.last_status() or {}).get("packets", {}).get(bob.session, 0)
        check("alice keeps receiving bob while carol leaves (round %d)" % (round_ + 1), after > before,
              {"before": before, "after": after})
        check("alice's speakers map drops carol when she leaves (round %d)" % (round_ + 1),
              alice.wait_slots(lambda m: carol_id not in m.values() and bob.session in m.values(), 10),
              alice.latest_slots())
    check("alice saw carol leave three times", alice.wait_for(lambda o: len(alice.events("left")) >= 3, 10),
          len(alice.events("left")))
    status = bob.last_status() or {}
    check("bob still hears alice at the end", abs((status.get("hz", {}).get(alice.session) or 0) - 440) <= 25, status)
    check("no errors for alice and bob", not alice.errors() and not bob.errors(), alice.errors() + bob.errors())
    # Fixed slots: joins and leaves cost the others a roster event, never a renegotiation.
    check("carol's joins and leaves made no one renegotiate",
          not alice.events_of("renegotiate") and not bob.events_of("renegotiate"),
          alice.events_of("renegotiate") + bob.events_of("renegotiate"))
    check("no one was put into their own slot",
          alice.session not in alice.speakers_seen() and bob.session not in bob.speakers_seen(),
          {"alice": sorted(alice.speakers_seen()), "bob": sorted(bob.speakers_seen())})


def scenario_disabled(ctx, check):
    ctx.serve.cli("channel", "disable", CHANNEL)
    member = ctx.peer("member", 440)
    err = refused(member, "call_not_allowed")
    check("a member is refused with call_not_allowed", err, member.lines[-1:] if member.lines else None)
    check("the refusal names the channel and the command that enables it",
          err and CHANNEL in err.get("message", "") and "callsctl channel enable" in err.get("message", ""), err)
    admin = ctx.peer("boss", 660, admin=True)
    check("an admin is refused too", refused(admin, "call_not_allowed"), admin.lines[-1:])


def scenario_testmode(ctx, check):
    ctx.serve.cli("channel", "testmode", "on")
    member = ctx.peer("member", 440)
    check("a member is refused in an unset channel under test mode", refused(member, "call_not_allowed"),
          member.lines[-1:])
    admin = ctx.peer("boss", 660, admin=True)
    check("an admin joins", admin.first("joined"), admin.lines[-1:])
    check("the admin's media connects", admin.first("connected", 30), admin.lines[-3:])


def scenario_disabled_while_running(ctx, check):
    alice = ctx.peer("alice", 440)
    check("alice starts the call", alice.first("joined") and alice.first("connected", 30))
    ctx.serve.cli("channel", "disable", CHANNEL)
    bob = ctx.peer("bob", 660)
    check("bob still joins the running call", bob.first("joined"), bob.lines[-1:])
    check("bob hears alice", bob.hears(alice, 30), bob.last_status())
    bob.leave()
    alice.leave()
    time.sleep(0.5)
    carol = ctx.peer("carol", 880)
    check("once the call ended, a new call is refused", refused(carol, "call_not_allowed"), carol.lines[-1:])


def scenario_limit(ctx, check):
    a, b = ctx.peer("alice", 440), ctx.peer("bob", 660)
    check("two join", a.first("joined") and b.first("joined"))
    c = ctx.peer("carol", 880)
    err = refused(c, "call_full")
    check("the third is refused with call_full", err, c.lines[-1:])
    check("the refusal names the limit", err and "--max-participants" in err.get("message", ""), err)
    a.leave()
    time.sleep(0.5)
    d = ctx.peer("dave", 880)
    check("after one leaves, another joins", d.first("joined"), d.lines[-1:])
    check("and hears bob", d.hears(b, 30), d.last_status())


def scenario_wrong_channel(ctx, check):
    p = ctx.peer("alice", 440, channel=OTHER_CHANNEL)
    err = refused(p, "bad_token")
    check("a token for another channel is refused", err, p.lines[-1:])
    check("the message names both channels", err and CHANNEL in err["message"] and OTHER_CHANNEL in err["message"], err)


def scenario_vanish(ctx, check):
    alice, bob, carol = ctx.peer("alice", 440), ctx.peer("bob", 660), ctx.peer("carol", 880)
    check("all three join", alice.first("joined") and bob.first("joined") and carol.first("joined"))
    check("alice hears carol", alice.hears(carol, 30))
    carol_id = carol.session
    carol.kill()
    left = alice.wait_for(lambda o: o.get("type") == "event" and o.get("event") == "left"
                          and o.get("participant") == carol_id, 20)
    check("alice sees carol leave after she vanished", left)
    check("alice's speakers map drops carol", alice.wait_slots(lambda m: carol_id not in m.values(), 10),
          alice.latest_slots())
    before = (alice.last_status() or {}).get("packets", {}).get(bob.session, 0)
    time.sleep(2)
    after = (alice.last_status() or {}).get("packets", {}).get(bob.session, 0)
    check("alice keeps receiving bob", after > before, {"before": before, "after": after})
    check("bob still hears alice", bob.hears(alice, 10), bob.last_status())


def scenario_send_error(ctx, check):
    alice, bob, carol = ctx.peer("alice", 440), ctx.peer("bob", 660), ctx.peer("carol", 880)
    check("all three join", alice.first("joined") and bob.first("joined") and carol.first("joined"))
    check("alice hears bob", alice.hears(bob, 30))
    check("alice hears carol", alice.hears(carol, 30))
    local = carol.first("local")
    ports = (local or {}).get("udpPorts") or []
    check("carol's UDP port is known", ports and ctx.serve.rtc_udp, {"carol": ports, "server": ctx.serve.rtc_udp})
    rules = "add table inet senderr\nadd chain inet senderr out { type filter hook output priority 0; }\n"
    for port in ports:
        rules += "add rule inet senderr out udp sport %d udp dport %d drop\n" % (ctx.serve.rtc_udp, port)
    nft = subprocess.run(["nft", "-f", "-"], input=rules, text=True, capture_output=True)
    check("nftables rule installed", nft.returncode == 0, nft.stderr)
    time.sleep(1)
    before = (alice.last_status() or {}).get("packets", {}).get(bob.session, 0)
    time.sleep(3)
    after = (alice.last_status() or {}).get("packets", {}).get(bob.session, 0)
    check("alice keeps receiving bob while sends to carol fail", after > before + 50, {"before": before, "after": after})
    before = (bob.last_status() or {}).get("packets", {}).get(alice.session, 0)
    time.sleep(2)
    after = (bob.last_status() or {}).get("packets", {}).get(alice.session, 0)
    check("bob keeps receiving alice", after > before + 30, {"before": before, "after": after})


SCENARIOS = {
    "churn": (scenario_churn, []),
    "disabled": (scenario_disabled, []),
    "testmode": (scenario_testmode, []),
    "disabled-while-running": (scenario_disabled_while_running, []),
    "limit": (scenario_limit, ["--max-participants", "2"]),
    "wrong-channel": (scenario_wrong_channel, []),
    "vanish": (scenario_vanish, []),
    "send-error": (scenario_send_error, []),
}

# Scenarios that change the firewall run in a network namespace of their own.
NEEDS_NETNS = {"send-error"}


class Context:
    def __init__(self, serve):
        self.serve, self.peers = serve, []

    def peer(self, name, hz, **kw):
        p = Peer(os.path.abspath(__file__), self.serve, name, hz, **kw)
        self.peers.append(p)
        return p


def run_scenario(args):
    if args.scenario in NEEDS_NETNS and os.environ.get("CALLSCTL_IN_NETNS") != "1":
        if shutil.which("unshare") is None or shutil.which("nft") is None or os.geteuid() != 0:
            print(json.dumps({"ok": False, "error": "needs root, unshare and nft for a private network namespace"}))
            return 3
        env = dict(os.environ, CALLSCTL_IN_NETNS="1")
        cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable,
               os.path.abspath(__file__)] + sys.argv[1:]
        return subprocess.run(cmd, env=env).returncode
    try:
        import aiortc  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        print(json.dumps({"ok": False, "error": "aiortc and numpy are not installed (pip install aiortc numpy)"}))
        return 3
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-aiortc-")
    os.makedirs(work, exist_ok=True)
    fn, extra = SCENARIOS[args.scenario]
    check = Checks()
    summary = {"scenario": args.scenario, "work": work}
    serve = None
    ctx = None
    try:
        serve = Serve(args.callsctl, work, extra)
        ctx = Context(serve)
        fn(ctx, check)
    except Exception as e:  # a crash of the scenario itself is a failure with its reason
        check("scenario ran", False, repr(e))
    finally:
        if ctx:
            for p in ctx.peers:
                p.kill()
            summary["peers"] = {p.name: [o for o in p.lines if o.get("type") != "status"][-8:] for p in ctx.peers}
        if serve:
            summary["serveExit"] = serve.stop()
    return finish(summary, check, work, args.keep)


def finish(summary, check, work, keep):
    """Ends a scenario: serve's exit is checked, the checks go into the summary (printed as one JSON document),
    the work folder is removed after a pass unless kept. Returns the exit status."""
    check("serve exits 0 on SIGTERM", summary.get("serveExit") == 0, summary.get("serveExit"))
    summary["checks"] = check.items
    summary["ok"] = check.ok
    if not check.ok:
        summary["error"] = "failed: " + ", ".join(c["check"] for c in check.items if not c["ok"])
    if not keep and check.ok:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2, default=str))
    return 0 if check.ok else 1


def participant_main(body, timeout=120):
    """`SCRIPT participant --api PORT --token T [--hz F] [--channel C]`: runs `body(args)` (a coroutine function) as
    one participant; a crash is printed as a JSON line. Returns the exit status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("participant")
    ap.add_argument("--api", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--hz", type=float, default=440)
    ap.add_argument("--channel")
    ap.add_argument("--timeout", type=float, default=timeout)
    args = ap.parse_args()
    try:
        asyncio.run(body(args))
    except Exception as e:
        emit({"type": "crash", "error": repr(e)})
        return 1
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "participant":
        return participant_main(participant)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/debug/callsctl"))
    ap.add_argument("--keep", help="keep logs in this folder")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    return run_scenario(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
