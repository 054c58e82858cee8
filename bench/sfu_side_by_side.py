#!/usr/bin/env python3
"""Side by side: `callsctl serve` and Janus (VideoRoom, audio-only publishers) on loopback, one load generator.

    bench/sfu-side-by-side.sh [options]     (installs janus with apt if missing, then runs this script)
    bench/sfu_side_by_side.py [--callsctl BIN] [--servers serve,janus] [--participants 5,20,50] [--speakers 1,2]
                              [--warmup S] [--window S] [--repeat N] [--json FILE] [--keep DIR] [--decode]

--callsctl defaults to .build-release/release/callsctl (the release build folder of scripts/bench.sh and bench/scale.py), built with `swift build -c release --scratch-path .build-release --product callsctl` when missing.
The default matrix (12 runs, 3 s warm-up, 10 s window) takes about 3.5 minutes; --repeat 3 about 10.

For every server x participants x speakers (a fresh server process each time) a load generator process joins N
audio participants: the S speakers publish Opus, everyone receives every speaker but itself. Only the signaling
adapter differs between the servers:

  serve  WebSocket protocol v2 (docs/protocol.md): speakers join unmuted, listeners with "muted": true and send
         nothing; every participant offers `audioSlots` recvonly audio sections (serve runs with --audio-slots 2,
         so with 1 or 2 speakers everyone hears every other speaker). One PeerConnection per participant.
  janus  VideoRoom over the HTTP API (one Janus session, one handle per PeerConnection): a room with N+1
         publisher places; speakers `joinandconfigure` an audio-only offer; every participant that has someone to
         hear attaches one subscriber handle with a multistream subscription (`streams: [{feed: ID}, ...]`), answers
         Janus's offer and sends `start`. Speakers have two PeerConnections (publisher, subscriber): Janus's model.

The generator is aiortc in one process: speakers loop 50 pre-encoded Opus packets (a sine, libopus through PyAV)
as `av.Packet`s with pts in 1/48000, so aiortc skips its encoder. Received RTP is counted when it reaches an
RTCRtpReceiver (SRTP-decrypted). By default the receivers' Opus decoder is replaced by one that decodes nothing
(the generator then stays well below a core, which keeps the comparison valid); `--decode` decodes for real and
drains every `track.recv()`.

Per run, after setup and a warm-up, over a fixed window:
  server CPU      utime+stime of /proc/PID/stat over the window (the kernel scales them to the exact run time of
                  all threads, exited ones included; 10 ms ticks); the JSON also has the run time of the threads
                  alive at both ends (/proc/PID/task/*/schedstat), which misses threads that exit (serve's do)
  forwarded       serve: callsctl_forwarded_packets_total{kind="audio"} from /metrics; janus: what the listeners
                  received (Janus has no forwarding counter on its plain API)
  CPU/pkt         server CPU / packets delivered to the listeners (the same measure for both servers), in us;
                  for serve also per forwarded packet by its own counter
  delivered/s     RTP packets the listeners received per second
  loss            1 - received / expected by RTP sequence numbers, summed over every stream the listeners receive
                  (aiortc's per-SSRC statistics, as behind inbound-rtp packetsLost); the JSON also has
                  delivery_ratio = received / (packets the speakers sent in the window x (N - 1))
  RSS             VmRSS of the server at the end of the window
  gen CPU         the load generator's own CPU over the window (share of one core; keep it below ~80 %)

A run passes when media arrived, loss < 5 % and delivery_ratio > 95 %. Prints a Markdown table (medians over
--repeat, with the range of CPU per packet and janus/serve ratios) and writes every run and the medians as JSON
(--json, default ./sfu-side-by-side.json). Logs and configs stay in --keep DIR (or in a temporary folder that is
removed after a run where everything passed). Loopback only (127.0.0.1). Janus runs from a private config folder with
ice_lite, ice_enforce_list "lo" and an LD_PRELOAD shim (built here with gcc) that hides IFF_LOOPBACK from
getifaddrs(), because Janus skips loopback interfaces otherwise.

Needs: janus (apt-get install -y --no-install-recommends janus), gcc, python aiortc + numpy (pip install aiortc
numpy). Exit: 0 every run passed, 1 a run failed (no media, a server did not start, a timeout), 3 janus, gcc or
aiortc missing. Every wait is bounded.
"""
import argparse
import asyncio
import fractions
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "scripts", "peers"))

CHANNEL = "4xp9fdt3pbdp7nrw7xjmrd8kkc"
AUDIO_SLOTS = 2
PPS = 50  # 20 ms Opus frames

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
int getifaddrs(struct ifaddrs **ifap) {            /* hide IFF_LOOPBACK so Janus gathers 127.0.0.1 on lo */
    static int (*real)(struct ifaddrs **);
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int r = real(ifap);
    if (r == 0) for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) i->ifa_flags &= ~IFF_LOOPBACK;
    return r;
}
"""


def log(*a):
    print("[sbs %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# /proc readings

def proc_cpu(pid):
    """(schedstat run time of the live threads in s, utime+stime in s) of a process."""
    run_ns = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    run_ns += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return run_ns / 1e9, (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        return None, None


def proc_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ----------------------------------------------------------------------------------------------------------
# A small asyncio HTTP/1.1 client (no aiohttp here): one request per connection.

async def http(method, port, path, body=None, timeout=15):
    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = b"" if body is None else json.dumps(body).encode()
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (method, path, port)
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            out, rest = b"", payload
            while rest:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    break
                out, rest = out + rest[:size], rest[size + 2:]
            payload = out
        return status, payload
    return await asyncio.wait_for(go(), timeout)


# ----------------------------------------------------------------------------------------------------------
# Load generator (a child process per run)

def opus_packets(hz, count=PPS):
    """`count` 20 ms Opus packets (48 kHz mono, 32 kbit/s) of a sine; whole cycles per second, so they loop."""
    import av
    import numpy as np
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = 48000, "mono", "s16", 32000
    codec.time_base = fractions.Fraction(1, 48000)
    codec.open()
    out = []
    for n in range(2 * count):
        t = (np.arange(960) + n * 960) / 48000
        pcm = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, n * 960, fractions.Fraction(1, 48000)
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out[-count:]


class Counters:
    server_candidates = set()   # addresses in the servers' SDP candidates (must all be 127.0.0.1)
    rtp_received = 0
    rtp_sent = 0
    frames_decoded = 0


def patch_aiortc(decode):
    import aioice.ice
    import aiortc.rtcrtpreceiver as rr
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    original = rr.RTCRtpReceiver._handle_rtp_packet

    async def counting(self, packet, arrival_time_ms):
        Counters.rtp_received += 1
        return await original(self, packet, arrival_time_ms)
    rr.RTCRtpReceiver._handle_rtp_packet = counting
    if not decode:
        class NullDecoder:
            def decode(self, encoded_frame):
                Counters.frames_decoded += 1
                return []
        rr.get_decoder = lambda codec: NullDecoder()


def stream_totals(pcs):
    """(received, expected by sequence numbers) summed over every remote stream of every receiver (aiortc's own
    per-SSRC statistics, the ones behind inbound-rtp packetsReceived / packetsLost)."""
    received = expected = 0
    for pc in pcs:
        for r in pc.getReceivers():
            for st in getattr(r, "_RTCRtpReceiver__remote_streams", {}).values():
                received += st.packets_received
                expected += st.packets_expected
    return received, expected


def note_candidates(sdp):
    for addr in re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ", sdp):
        Counters.server_candidates.add(addr)


def opus_track(packets):
    import av
    from aiortc.mediastreams import MediaStreamTrack

    class OpusLoop(MediaStreamTrack):
        """Pre-encoded Opus in real time: aiortc packs av.Packets without encoding."""
        kind = "audio"

        def __init__(self):
            super().__init__()
            self.pts, self.start, self.i = 0, None, 0

        async def recv(self):
            if self.start is None:
                self.start = time.monotonic()
            wait = self.start + self.pts / 48000 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            p = av.Packet(packets[self.i % len(packets)])
            p.pts, p.time_base = self.pts, fractions.Fraction(1, 48000)
            self.pts += 960
            self.i += 1
            Counters.rtp_sent += 1
            return p
    return OpusLoop()


def drain(track, decode):
    async def run():
        while True:
            try:
                await track.recv()
            except Exception:
                return
            if decode:
                Counters.frames_decoded += 1
    return asyncio.ensure_future(run())


class ServeAdapter:
    """callsctl serve, WebSocket protocol v2."""

    def __init__(self, cfg):
        from aiortc_calls import WebSocket
        self.WebSocket, self.cfg, self.peers, self.pcs, self.tasks = WebSocket, cfg, [], [], []

    async def join(self, index, speaker, packets):
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        ws = await self.WebSocket.connect("127.0.0.1", self.cfg["api"])
        await ws.send({"v": 2, "type": "join", "token": self.cfg["tokens"][index], "muted": not speaker})
        pc = None
        connected = asyncio.get_running_loop().create_future()
        while True:
            m = await ws.recv()
            if m is None:
                raise RuntimeError("serve closed the socket of participant %d" % index)
            t = m.get("type")
            if t == "error":
                raise RuntimeError("serve: %s" % m)
            if t == "joined":
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                pc.on("track", lambda track: self.tasks.append(drain(track, self.cfg["decode"])))
                if speaker:
                    pc.addTransceiver(opus_track(packets), direction="sendonly")
                for _ in range(m.get("audioSlots", AUDIO_SLOTS)):
                    pc.addTransceiver("audio", direction="recvonly")
                await pc.setLocalDescription(await pc.createOffer())
                await ws.send({"type": "offer", "sdp": pc.localDescription.sdp})
            elif t == "answer":
                note_candidates(m["sdp"])
                await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="answer"))
            elif t == "connected":
                break
            elif t == "renegotiate":
                raise RuntimeError("unexpected renegotiate: %s" % m)
        self.peers.append((ws, pc))
        self.pcs.append(pc)
        # Keep reading the socket (events, speakers maps; pings are answered in recv).
        self.tasks.append(asyncio.ensure_future(self._read(ws)))

    async def _read(self, ws):
        while await ws.recv() is not None:
            pass

    async def setup(self, n, s, packets):
        sem = asyncio.Semaphore(10)

        async def one(i):
            async with sem:
                await self.join(i, i < s, packets[i % len(packets)])
        for i in range(s):   # speakers first, as in the Janus run
            await one(i)
        await asyncio.gather(*(one(i) for i in range(s, n)))

    async def metric(self):
        try:
            status, body = await http("GET", self.cfg["api"], "/metrics", timeout=5)
        except Exception:
            return None
        m = re.search(rb'^callsctl_forwarded_packets_total\{kind="audio"\} (\d+)', body, re.M)
        return int(m.group(1)) if m else None

    async def close(self):
        for ws, pc in self.peers:
            try:
                await ws.send({"type": "leave"})
            except Exception:
                pass
        for ws, pc in self.peers:
            await asyncio.wait_for(pc.close(), 5)
            ws.close()


class JanusAdapter:
    """Janus VideoRoom over the HTTP API: one session, a handle per PeerConnection, events by long poll."""

    def __init__(self, cfg):
        self.cfg, self.port = cfg, cfg["janus_port"]
        self.pending, self.webrtcup, self.pcs, self.tasks = {}, {}, [], []
        self.session = None
        self.room = 4321

    async def post(self, path, body):
        body = dict(body, transaction=uuid.uuid4().hex)
        status, payload = await http("POST", self.port, path, body)
        r = json.loads(payload)
        if r.get("janus") == "error":
            raise RuntimeError("janus: %s" % r)
        return r

    async def request(self, handle, body, jsep=None):
        """A plugin message; returns the plugin's event (asynchronous) or its synchronous answer."""
        tr = uuid.uuid4().hex
        msg = {"janus": "message", "body": body, "transaction": tr}
        if jsep:
            msg["jsep"] = jsep
        fut = asyncio.get_running_loop().create_future()
        self.pending[tr] = fut
        status, payload = await http("POST", self.port, "/janus/%d/%d" % (self.session, handle), msg)
        r = json.loads(payload)
        if r.get("janus") == "ack":
            r = await asyncio.wait_for(fut, 20)
        self.pending.pop(tr, None)
        if r.get("janus") == "error":
            raise RuntimeError("janus: %s" % r)
        data = r.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise RuntimeError("janus videoroom: %s" % data)
        return r

    async def poll(self):
        while True:
            try:
                status, payload = await http("GET", self.port, "/janus/%d?maxev=50" % self.session, timeout=40)
                events = json.loads(payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.1)
                continue
            for e in events if isinstance(events, list) else [events]:
                tr = e.get("transaction")
                if tr in self.pending and not self.pending[tr].done() and e.get("janus") in ("event", "error"):
                    self.pending[tr].set_result(e)
                if e.get("janus") == "webrtcup":
                    fut = self.webrtcup.setdefault(e["sender"], asyncio.get_running_loop().create_future())
                    if not fut.done():
                        fut.set_result(True)

    async def attach(self):
        r = await self.post("/janus/%d" % self.session, {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        return r["data"]["id"]

    async def up(self, handle):
        fut = self.webrtcup.setdefault(handle, asyncio.get_running_loop().create_future())
        await asyncio.wait_for(fut, 20)

    async def publish(self, index, packets):
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        handle = await self.attach()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.addTransceiver(opus_track(packets), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        r = await self.request(handle, {"request": "joinandconfigure", "ptype": "publisher", "room": self.room,
                                        "display": "p%d" % index, "audio": True, "video": False},
                               {"type": "offer", "sdp": pc.localDescription.sdp})
        note_candidates(r["jsep"]["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r["jsep"]["sdp"], type="answer"))
        await self.up(handle)
        return r["plugindata"]["data"]["id"]

    async def subscribe(self, feeds):
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        handle = await self.attach()
        r = await self.request(handle, {"request": "join", "ptype": "subscriber", "room": self.room,
                                        "streams": [{"feed": f} for f in feeds]})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.on("track", lambda track: self.tasks.append(drain(track, self.cfg["decode"])))
        note_candidates(r["jsep"]["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r["jsep"]["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.request(handle, {"request": "start", "room": self.room},
                           {"type": "answer", "sdp": pc.localDescription.sdp})
        await self.up(handle)

    async def setup(self, n, s, packets):
        r = await self.post("/janus", {"janus": "create"})
        self.session = r["data"]["id"]
        self.tasks.append(asyncio.ensure_future(self.poll()))
        admin = await self.attach()
        await self.request(admin, {"request": "create", "room": self.room, "publishers": n + 1,
                                   "audiocodec": "opus", "permanent": False, "is_private": False})
        feeds = [await self.publish(i, packets[i % len(packets)]) for i in range(s)]
        sem = asyncio.Semaphore(10)

        async def one(i):
            others = [f for j, f in enumerate(feeds) if j != i]
            if others:
                async with sem:
                    await self.subscribe(others)
        await asyncio.gather(*(one(i) for i in range(n)))

    async def metric(self):
        return None

    async def close(self):
        for pc in self.pcs:
            await asyncio.wait_for(pc.close(), 5)
        if self.session:
            try:
                await self.post("/janus/%d" % self.session, {"janus": "destroy"})
            except Exception:
                pass


async def generate(cfg):
    patch_aiortc(cfg["decode"])
    n, s, pid = cfg["participants"], cfg["speakers"], cfg["server_pid"]
    packets = [opus_packets(hz) for hz in (440, 660)]
    adapter = ServeAdapter(cfg) if cfg["server"] == "serve" else JanusAdapter(cfg)
    out = {"server": cfg["server"], "participants": n, "speakers": s}
    t_setup = time.monotonic()
    try:
        await asyncio.wait_for(adapter.setup(n, s, packets), cfg["setup_timeout"])
        out["setup_s"] = round(time.monotonic() - t_setup, 2)
        out["server_candidates"] = sorted(Counters.server_candidates)
        if Counters.server_candidates - {"127.0.0.1"}:
            raise RuntimeError("the server offered non-loopback candidates: %s" % out["server_candidates"])
        await asyncio.sleep(cfg["warmup"])
        me = os.getpid()
        m0 = await adapter.metric()
        q0 = stream_totals(adapter.pcs)
        c0, g0, r0, s0, w0 = proc_cpu(pid), proc_cpu(me), Counters.rtp_received, Counters.rtp_sent, time.monotonic()
        await asyncio.sleep(cfg["window"])
        c1, g1, r1, s1, w1 = proc_cpu(pid), proc_cpu(me), Counters.rtp_received, Counters.rtp_sent, time.monotonic()
        q1 = stream_totals(adapter.pcs)
        seq_received, seq_expected = q1[0] - q0[0], q1[1] - q0[1]
        m1 = await adapter.metric()
        rss = proc_rss_kib(pid)
        elapsed = w1 - w0
        received, sent = r1 - r0, s1 - s0
        expected = sent * (n - 1)
        cpu = c1[1] - c0[1]
        out.update({
            "window_s": round(elapsed, 3),
            "server_cpu_s": round(cpu, 3),
            "server_cpu_live_threads_s": round(c1[0] - c0[0], 4),
            "server_cpu_share": round(cpu / elapsed, 4),
            "server_rss_kib": rss,
            "sent": sent, "expected": expected, "received": received,
            "delivered_pps": round(received / elapsed, 1),
            "delivery_ratio": round(received / expected, 5) if expected else None,
            "seq_received": seq_received, "seq_expected": seq_expected,
            "loss": round(1 - seq_received / seq_expected, 5) if seq_expected else None,
            "server_us_per_delivered": round(cpu / received * 1e6, 2) if received else None,
            "forwarded_metric": None if m0 is None or m1 is None else m1 - m0,
            "gen_cpu_share": round((g1[1] - g0[1]) / elapsed, 4),
            "frames_decoded_since_join": Counters.frames_decoded,
        })
        if out["forwarded_metric"]:
            out["server_us_per_forwarded"] = round(cpu / out["forwarded_metric"] * 1e6, 2)
        out["ok"] = received > 0 and out["loss"] is not None and out["loss"] < 0.05 and \
            out["delivery_ratio"] > 0.95
        if not out["ok"]:
            out["error"] = "no media" if received == 0 else "loss %.1f %%, delivered %.1f %% of what was sent" % (
                100 * (out["loss"] or 0), 100 * out["delivery_ratio"])
    except Exception as e:
        out.update({"ok": False, "error": "%s: %s" % (type(e).__name__, e),
                    "setup_s": round(time.monotonic() - t_setup, 2)})
    finally:
        try:
            await asyncio.wait_for(adapter.close(), 30)
        except Exception:
            pass
        for t in adapter.tasks:
            t.cancel()
    return out


def generator_main():
    cfg = json.loads(sys.stdin.read())
    try:
        out = asyncio.run(asyncio.wait_for(generate(cfg), cfg["setup_timeout"] + cfg["warmup"] + cfg["window"] + 60))
    except Exception as e:
        out = {"ok": False, "error": "generator: %s: %s" % (type(e).__name__, e)}
    print(json.dumps(out), flush=True)
    os._exit(0)   # aiortc leaves decoder/encoder threads; do not wait for them


# ----------------------------------------------------------------------------------------------------------
# Servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeServer:
    name = "serve"

    def __init__(self, callsctl, work):
        from aiortc_calls import Serve
        self.serve = Serve(callsctl, work, ["--audio-slots", str(AUDIO_SLOTS), "--drain-timeout", "2"])
        self.pid = self.serve.proc.pid

    def config(self, n):
        return {"api": self.serve.api,
                "tokens": [self.serve.token("p%d" % i) for i in range(n)]}

    def stop(self):
        return self.serve.stop()


class JanusServer:
    name = "janus"

    def __init__(self, janus, shim, work):
        etc = os.path.join(work, "janus-etc")
        os.makedirs(etc, exist_ok=True)
        self.port = free_port()
        libdir = janus_libdir()
        plugins_off = ",".join("libjanus_%s.so" % p for p in (
            "audiobridge", "echotest", "sip", "nosip", "lua", "duktape", "textroom", "streaming", "videocall",
            "voicemail", "recordplay"))
        transports_off = ",".join("libjanus_%s.so" % t for t in ("rabbitmq", "mqtt", "nanomsg", "pfunix",
                                                                 "websockets"))
        events_off = ",".join("libjanus_%sevh.so" % e for e in ("gelf", "mqtt", "nanomsg", "rabbitmq", "sample",
                                                                "ws"))
        with open(os.path.join(etc, "janus.jcfg"), "w") as f:
            f.write("""general: {
    configs_folder = "%(etc)s"
    plugins_folder = "%(lib)s/plugins"
    transports_folder = "%(lib)s/transports"
    events_folder = "%(lib)s/events"
    loggers_folder = "%(lib)s/loggers"
    debug_level = 4
    session_timeout = 120
    interface = "127.0.0.1"
}
media: {
}
nat: {
    nice_debug = false
    ice_lite = true
    ice_tcp = false
    ice_enforce_list = "lo"
}
plugins: { disable = "%(plugins_off)s" }
transports: { disable = "%(transports_off)s" }
events: { broadcast = false
    disable = "%(events_off)s" }
loggers: { disable = "libjanus_jsonlog.so" }
""" % {"etc": etc, "lib": libdir, "plugins_off": plugins_off, "transports_off": transports_off,
                "events_off": events_off})
        with open(os.path.join(etc, "janus.transport.http.jcfg"), "w") as f:
            f.write('general: {\n    json = "plain"\n    base_path = "/janus"\n    http = true\n'
                    '    ip = "127.0.0.1"\n    port = %d\n    https = false\n}\nadmin: {\n    admin_http = false\n'
                    '    admin_https = false\n}\n' % self.port)
        with open(os.path.join(etc, "janus.plugin.videoroom.jcfg"), "w") as f:
            f.write("general: {\n}\n")
        self.log = open(os.path.join(work, "janus.log"), "w")
        self.proc = subprocess.Popen([janus, "-C", os.path.join(etc, "janus.jcfg"), "-F", etc, "-o"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, LD_PRELOAD=shim), start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("janus exited with %s; see %s" % (self.proc.returncode, self.log.name))
            try:
                status, body = asyncio.run(http("GET", self.port, "/janus/info", timeout=2))
                if status == 200:
                    self.info = json.loads(body)
                    return
            except Exception:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("janus did not answer on 127.0.0.1:%d; see %s" % (self.port, self.log.name))

    def config(self, n):
        return {"janus_port": self.port}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return "killed"


def janus_libdir():
    try:
        with open("/etc/janus/janus.jcfg") as f:
            m = re.search(r'plugins_folder\s*=\s*"([^"]+)/plugins"', f.read())
            if m:
                return m.group(1)
    except OSError:
        pass
    return "/usr/lib/%s-linux-gnu/janus" % platform.machine()


def build_shim(work):
    src, so = os.path.join(work, "noloopflag.c"), os.path.join(work, "noloopflag.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", so, src, "-ldl"], check=True, timeout=60)
    return so


# ----------------------------------------------------------------------------------------------------------
# Orchestrator

def versions(callsctl, janus):
    v = {}
    try:
        v["callsctl"] = subprocess.run([callsctl, "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip()
    except Exception as e:
        v["callsctl"] = repr(e)
    try:
        out = subprocess.run([janus, "--version"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"Janus version: \d+ \(([^)]+)\)", out)
        v["janus"] = m.group(1) if m else out.strip()[:80]
    except Exception as e:
        v["janus"] = repr(e)
    try:
        import aiortc
        import av
        v["aiortc"], v["av"] = aiortc.__version__, av.__version__
    except Exception:
        pass
    v["python"] = platform.python_version()
    return v


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else ""
    except OSError:
        pass
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = []
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(), "loadavg_at_start": load}


def run_case(server, n, s, args, work, rep=0):
    """One run: a fresh server, one generator process. Returns the generator's JSON."""
    case_dir = os.path.join(work, "%s-%d-%d-r%d" % (server, n, s, rep + 1))
    os.makedirs(case_dir, exist_ok=True)
    srv = None
    t0 = time.time()
    try:
        srv = ServeServer(args.callsctl, case_dir) if server == "serve" else \
            JanusServer(args.janus, args.shim, case_dir)
        rss0 = proc_rss_kib(srv.pid)
        cfg = dict(srv.config(n), server=server, participants=n, speakers=s, server_pid=srv.pid,
                   warmup=args.warmup, window=args.window, setup_timeout=args.setup_timeout, decode=args.decode)
        budget = args.setup_timeout + args.warmup + args.window + 120
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "generate"], input=json.dumps(cfg),
                           capture_output=True, text=True, timeout=budget)
        with open(os.path.join(case_dir, "generator.log"), "w") as f:
            f.write(p.stderr)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        out = json.loads(lines[-1]) if lines else {"ok": False, "error": "generator printed nothing (rc %s)"
                                                   % p.returncode}
        out["server_rss_idle_kib"] = rss0
    except subprocess.TimeoutExpired:
        out = {"ok": False, "error": "generator timed out"}
    except Exception as e:
        out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    finally:
        if srv:
            out["server_exit"] = srv.stop()
    out.update(server=server, participants=n, speakers=s, wall_s=round(time.time() - t0, 1))
    return out


def fmt(x, spec, scale=1):
    return "–" if x is None else format(x * scale, spec)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def summarize(results):
    """Medians per (server, participants, speakers) over the repetitions that passed."""
    groups = {}
    for r in results:
        groups.setdefault((r["server"], r["participants"], r["speakers"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        good = [r for r in rs if r.get("ok")]
        row = {"runs": len(rs), "passed": len(good), "errors": [r.get("error") for r in rs if not r.get("ok")]}
        for k in ("delivered_pps", "loss", "delivery_ratio", "server_cpu_share", "server_us_per_delivered",
                  "server_us_per_forwarded", "server_rss_kib", "server_rss_idle_kib", "gen_cpu_share", "setup_s"):
            row[k] = median(r.get(k) for r in good)
        per = [r["server_us_per_delivered"] for r in good if r.get("server_us_per_delivered")]
        row["us_per_delivered_range"] = [min(per), max(per)] if per else None
        out[key] = row
    return out


def table(summary):
    rows = ["| participants | speakers | server | delivered pkt/s (expected) | loss | server CPU, % of a core | "
            "**server CPU / delivered pkt** (range) | server RSS (idle) | generator CPU | janus / serve |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (server, n, s), r in sorted(summary.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0] != "serve")):
        if not r["passed"]:
            rows.append("| %d | %d | %s | failed: %s | | | | | | |" % (n, s, server, "; ".join(map(str, r["errors"]))))
            continue
        ratio = ""
        other = summary.get(("serve", n, s))
        if server == "janus" and other and other.get("server_us_per_delivered") and r["server_us_per_delivered"]:
            ratio = "**%.2f×**" % (r["server_us_per_delivered"] / other["server_us_per_delivered"])
        per = "**%s µs**" % fmt(r["server_us_per_delivered"], ".1f")
        if r["runs"] > 1 and r["us_per_delivered_range"]:
            per += " (%.1f–%.1f)" % tuple(r["us_per_delivered_range"])
        note = "" if r["passed"] == r["runs"] else " (%d of %d runs passed)" % (r["passed"], r["runs"])
        rows.append("| %d | %d | %s%s | %s (%d) | %s %% | %s %% | %s | %s (%s) MiB | %s %% | %s |" % (
            n, s, server, note, fmt(r["delivered_pps"], ",.0f"), s * (n - 1) * PPS, fmt(r["loss"], ".2f", 100),
            fmt(r["server_cpu_share"], ".1f", 100), per, fmt(r["server_rss_kib"], ".1f", 1 / 1024),
            fmt(r["server_rss_idle_kib"], ".1f", 1 / 1024), fmt(r["gen_cpu_share"], ".0f", 100), ratio))
    return "\n".join(rows)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "generate":
        return generator_main()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bin = os.path.join(REPO, ".build-release", "release", "callsctl")
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", default_bin),
                    help="callsctl binary (default .build-release/release/callsctl, built if missing)")
    ap.add_argument("--janus", default=shutil.which("janus") or "janus")
    ap.add_argument("--servers", default="serve,janus")
    ap.add_argument("--participants", default="5,20,50")
    ap.add_argument("--speakers", default="1,2")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--window", type=float, default=10)
    ap.add_argument("--setup-timeout", type=float, default=90)
    ap.add_argument("--repeat", type=int, default=1, help="run the matrix this many times; the table gives medians")
    ap.add_argument("--decode", action="store_true", help="decode received Opus and drain every track")
    ap.add_argument("--json", default="sfu-side-by-side.json", help="write the results here (default: %(default)s)")
    ap.add_argument("--keep", help="work folder to keep (logs, configs); default a temporary one, removed after")
    args = ap.parse_args()

    servers = [x for x in args.servers.split(",") if x]
    try:
        import aiortc  # noqa: F401
        import av  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        print("missing Python package (%s): pip install aiortc numpy" % e, file=sys.stderr)
        return 3
    if "janus" in servers and (not shutil.which(args.janus) or not shutil.which("gcc")):
        print("janus or gcc missing: apt-get install -y --no-install-recommends janus gcc "
              "(bench/sfu-side-by-side.sh installs janus)", file=sys.stderr)
        return 3
    if "serve" in servers and not os.access(args.callsctl, os.X_OK):
        if args.callsctl != default_bin:
            print("no callsctl binary at %s" % args.callsctl, file=sys.stderr)
            return 1
        log("building callsctl: swift build -c release --scratch-path .build-release --product callsctl")
        if subprocess.run(["swift", "build", "-c", "release", "--scratch-path", os.path.join(REPO, ".build-release"),
                           "--product", "callsctl"], cwd=REPO).returncode:
            return 1

    work = args.keep or tempfile.mkdtemp(prefix="sfu-sbs-")
    os.makedirs(work, exist_ok=True)
    if "janus" in servers:
        args.shim = build_shim(work)
        log("built the getifaddrs shim %s (LD_PRELOAD for janus)" % args.shim)
    info = {"machine": machine(), "versions": versions(args.callsctl, args.janus),
            "callsctl_binary": os.path.abspath(args.callsctl),
            "settings": {"warmup_s": args.warmup, "window_s": args.window, "audio_slots": AUDIO_SLOTS,
                         "decode": args.decode, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
    log("machine %s; versions %s" % (info["machine"], info["versions"]))
    results = []
    t0 = time.time()
    for rep in range(args.repeat):
        for n in [int(x) for x in args.participants.split(",")]:
            for s in [int(x) for x in args.speakers.split(",")]:
                for server in servers:
                    log("run %d/%d %s: %d participants, %d speaker(s)" % (rep + 1, args.repeat, server, n, s))
                    r = run_case(server, n, s, args, work, rep)
                    log("  -> %s" % json.dumps(r))
                    results.append(dict(r, repetition=rep + 1))
    summary = summarize(results)
    info["results"] = results
    info["summary"] = [dict(server=k[0], participants=k[1], speakers=k[2], **v) for k, v in sorted(summary.items())]
    info["total_s"] = round(time.time() - t0, 1)
    out_json = args.json
    with open(out_json, "w") as f:
        json.dump(info, f, indent=2)
    m, v = info["machine"], info["versions"]
    print("Machine: %d × %s, Linux %s; janus %s, aiortc %s, %s (%s)\n" % (
        m["nproc"], m["cpu"], m["kernel"], v.get("janus"), v.get("aiortc"), v.get("callsctl"),
        info["callsctl_binary"]))
    print(table(summary))
    print("\nJSON: %s; %d runs in %.0f s" % (out_json, len(results), info["total_s"]))
    ok = all(r.get("ok") for r in results)
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    elif not ok:
        print("logs kept in %s" % work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
