#!/usr/bin/python3
"""A GStreamer webrtcbin participant in a callsctl call (run by gst_webrtc.py with /usr/bin/python3, which has `gi`).

    gst_participant.py --api PORT --token T [--hz F] [--timeout S]
    gst_participant.py --probe          exit 0 when gi, webrtcbin, libnice and the Opus elements are there, else 3

It speaks protocol version 2 over the signaling WebSocket (the stdlib client of aiortc_calls.py), publishes an Opus
sine tone (audiotestsrc ! opusenc ! rtpopuspay) in a `sendonly` section, adds `joined.audioSlots` receive-only audio
transceivers (more when the server sends `renegotiate`), offers, and applies the answer. Each audio slot that webrtcbin
exposes (`pad-added`) is decoded (rtpopusdepay ! opusdec) into a `spectrum` element; the loudest band of each spectrum
message counts for the participant that the last `speakers` message puts in the slot's mid.

Prints JSON lines like the aiortc participant: every server message, a `status` line each second with the dominant
frequency and RTP packets per remote participant, `gst` lines for what webrtcbin itself reports (offer, errors, ICE
state), and `exit`. On stdin it takes `{"cmd": "leave"}`. libnice skips loopback addresses when gathering, so
127.0.0.1 is added to the ICE agent by hand; ICE-TCP is on (webrtcbin's default), so it connects over UDP or TCP
depending on the candidates in the server's answer.
"""
import argparse
import asyncio
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aiortc_calls import WebSocket  # noqa: E402  (stdlib only at import time)

KEEP = []          # PyGObject wrappers that must outlive the calls that made them (segfaults otherwise)
RATE, BANDS = 16000, 1600   # spectrum: 5 Hz per band


def emit(obj):
    print(json.dumps(obj, default=str), flush=True)


def load_gi():
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstWebRTC", "1.0")
    gi.require_version("GstSdp", "1.0")
    gi.require_version("Nice", "0.1")
    from gi.repository import Gst, GstSdp, GstWebRTC, Nice
    Gst.init(None)
    missing = [e for e in ("webrtcbin", "audiotestsrc", "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay",
                           "spectrum", "audioresample", "nicesrc") if Gst.ElementFactory.find(e) is None]
    if missing:
        raise ImportError("missing GStreamer elements: " + ", ".join(missing))
    return Gst, GstSdp, GstWebRTC, Nice


class Participant:
    def __init__(self, args, gst):
        self.args = args
        self.Gst, self.GstSdp, self.GstWebRTC, self.Nice = gst
        self.loop = asyncio.get_running_loop()
        self.lock = threading.Lock()
        self.speaker_of = {}      # slot mid -> participant (None while free), from the last `speakers`
        self.peaks = {}           # participant -> [(time, hz, dB)] of recent spectrum peaks
        self.slot_packets = {}    # mid -> RTP packets counted on webrtcbin's src pad
        self.counted = {}         # mid -> packets already attributed
        self.packets_of = {}      # participant -> packets
        self.pipeline = self.webrtc = None
        self.want = 0
        self.recv_transceivers = 0
        self.negotiating = self.again = False
        self.negotiation_needed = asyncio.Event()
        self.mid_of_spectrum = {}  # spectrum element name -> slot mid

    # -- pipeline ------------------------------------------------------------------------------------------------

    def build(self):
        Gst = self.Gst
        self.pipeline = Gst.parse_launch(
            "audiotestsrc is-live=true wave=sine volume=0.3 freq=%g ! audioconvert ! audioresample ! "
            "opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! "
            "webrtcbin name=w bundle-policy=max-bundle" % self.args.hz)
        KEEP.append(self.pipeline)
        self.webrtc = self.pipeline.get_by_name("w")
        KEEP.append(self.webrtc)
        # libnice leaves loopback out when gathering: add 127.0.0.1 (the server listens there).
        ice = self.webrtc.get_property("ice-agent")
        agent = ice.get_property("agent")
        KEEP.extend([ice, agent])
        addr = self.Nice.Address.new()
        addr.set_from_string("127.0.0.1")
        KEEP.append(addr)
        agent.add_local_address(addr)
        if self.args.keepalive_conncheck:
            # Keepalives as Binding Requests instead of RFC 8445 §11 Binding Indications (see gst_webrtc.py).
            agent.set_property("keepalive-conncheck", True)
        self.ice = ice
        self.webrtc.connect("on-negotiation-needed",
                            lambda *_: self.loop.call_soon_threadsafe(self.negotiation_needed.set))
        self.webrtc.connect("pad-added", self.on_pad_added)
        # The microphone: the transceiver of the request pad parse_launch linked (sink_0), made sendonly (webrtcbin's
        # default for it is sendrecv, which the server also takes: --mic-direction sendrecv).
        mic = self.webrtc.emit("get-transceiver", 0)
        KEEP.append(mic)
        if self.args.mic_direction == "sendonly":
            mic.set_property("direction", self.GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        self.add_recv_transceivers()
        self.pipeline.set_state(Gst.State.PLAYING)

    def add_recv_transceivers(self):
        caps = self.Gst.Caps.from_string("application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111")
        KEEP.append(caps)
        while self.recv_transceivers < self.want:
            t = self.webrtc.emit("add-transceiver", self.GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
            KEEP.append(t)
            self.recv_transceivers += 1

    def on_pad_added(self, webrtc, pad):
        # A streaming thread. Only src pads carry received slots.
        if pad.get_direction() != self.Gst.PadDirection.SRC:
            return
        KEEP.append(pad)
        transceiver = pad.get_property("transceiver")
        KEEP.append(transceiver)
        mid = transceiver.get_property("mid")
        safe = re.sub(r"[^A-Za-z0-9_]", "_", str(mid))
        decode = self.Gst.parse_bin_from_description(
            "queue ! rtpopusdepay ! opusdec ! audioconvert ! audioresample ! audio/x-raw,rate=%d,channels=1 ! "
            "spectrum name=spec_%s bands=%d interval=250000000 threshold=-100 post-messages=true "
            "message-magnitude=true ! fakesink sync=false async=false" % (RATE, safe, BANDS), True)
        KEEP.append(decode)
        decode.set_name("decode_" + safe)
        self.mid_of_spectrum["spec_" + safe] = mid
        self.pipeline.add(decode)
        decode.sync_state_with_parent()
        sink = decode.get_static_pad("sink")
        KEEP.append(sink)
        result = pad.link(sink)

        def count(_pad, _info):
            with self.lock:
                self.slot_packets[mid] = self.slot_packets.get(mid, 0) + 1
            return self.Gst.PadProbeReturn.OK
        pad.add_probe(self.Gst.PadProbeType.BUFFER, count)
        self.loop.call_soon_threadsafe(emit, {"type": "gst", "event": "pad-added", "pad": pad.get_name(), "mid": mid,
                                             "link": result.value_nick})

    # -- negotiation (webrtcbin's promises block: they run in a worker thread) -----------------------------------

    def _create_offer(self):
        Gst = self.Gst
        promise = Gst.Promise.new()
        self.webrtc.emit("create-offer", None, promise)
        promise.wait()
        reply = promise.get_reply()
        KEEP.extend([promise, reply])
        if reply is None or reply.has_field("error"):
            raise RuntimeError("create-offer failed: %s" % (reply and reply.to_string()))
        offer = reply.get_value("offer")
        sdp = offer.sdp
        KEEP.extend([offer, sdp])
        text = sdp.as_text()
        promise = Gst.Promise.new()
        self.webrtc.emit("set-local-description", offer, promise)
        promise.wait()
        reply = promise.get_reply()
        KEEP.extend([promise, reply])
        if reply is not None and reply.has_field("error"):
            raise RuntimeError("set-local-description failed: %s" % reply.to_string())
        return text

    def _set_answer(self, text):
        Gst, GstSdp, GstWebRTC = self.Gst, self.GstSdp, self.GstWebRTC
        res, msg = GstSdp.SDPMessage.new_from_text(text)
        KEEP.append(msg)
        if res != GstSdp.SDPResult.OK:
            raise RuntimeError("cannot parse the answer: %s" % res)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        KEEP.append(answer)
        promise = Gst.Promise.new()
        self.webrtc.emit("set-remote-description", answer, promise)
        promise.wait()
        reply = promise.get_reply()
        KEEP.extend([promise, reply])
        if reply is not None and reply.has_field("error"):
            raise RuntimeError("set-remote-description failed: %s" % reply.to_string())

    async def negotiate(self, ws):
        if self.negotiating:
            self.again = True
            return
        self.negotiating = True
        self.add_recv_transceivers()
        text = await asyncio.wait_for(self.loop.run_in_executor(None, self._create_offer), 10)
        emit({"type": "gst", "event": "offer", "sdp": text})
        await ws.send({"type": "offer", "sdp": text})

    async def on_answer(self, ws, sdp):
        await asyncio.wait_for(self.loop.run_in_executor(None, self._set_answer, sdp), 10)
        emit({"type": "gst", "event": "answer-applied"})
        self.negotiating = False
        if self.again:
            self.again = False
            await self.negotiate(ws)

    # -- measurements ---------------------------------------------------------------------------------------------

    def on_spectrum(self, name, structure):
        mid = self.mid_of_spectrum.get(name)
        who = self.speaker_of.get(mid) if mid is not None else None
        if who is None:
            return
        m = re.search(r"magnitude=\(float\)[{<]([^}>]*)[}>]", structure.to_string())
        if not m:
            return
        mags = [float(x) for x in m.group(1).split(",")]
        i = max(range(1, len(mags)), key=mags.__getitem__)
        # Parabolic interpolation between neighbouring bands (dB values). The bands are the bins of an FFT of
        # 2 * (bands - 1) samples, so band i is at i * rate / (2 * (bands - 1)) Hz.
        delta = 0.0
        if 0 < i < len(mags) - 1:
            a, b, c = mags[i - 1], mags[i], mags[i + 1]
            if a - 2 * b + c != 0:
                delta = max(-0.5, min(0.5, 0.5 * (a - c) / (a - 2 * b + c)))
        hz = (i + delta) * RATE / (2.0 * (len(mags) - 1))
        buf = self.peaks.setdefault(who, [])
        buf.append((time.time(), hz, mags[i]))
        del buf[:-20]

    def dominant(self, who):
        now = time.time()
        loud = sorted(hz for t, hz, db in self.peaks.get(who, []) if now - t < 2 and db > -60)
        return round(loud[len(loud) // 2], 1) if len(loud) >= 3 else None

    async def bus_loop(self):
        Gst = self.Gst
        bus = self.pipeline.get_bus()
        KEEP.append(bus)
        while True:
            while True:
                msg = bus.pop()
                if msg is None:
                    break
                t = msg.type
                if t == Gst.MessageType.ELEMENT:
                    s = msg.get_structure()
                    if s is not None and s.get_name() == "spectrum":
                        self.on_spectrum(msg.src.get_name(), s)
                elif t in (Gst.MessageType.ERROR, Gst.MessageType.WARNING):
                    err, dbg = msg.parse_error() if t == Gst.MessageType.ERROR else msg.parse_warning()
                    emit({"type": "gst", "event": "error" if t == Gst.MessageType.ERROR else "warning",
                          "src": msg.src.get_name(), "message": err.message, "debug": dbg})
            await asyncio.sleep(0.05)

    async def status_loop(self):
        last_ice = None
        while True:
            await asyncio.sleep(1)
            if self.webrtc is None:
                continue
            with self.lock:
                for mid, n in self.slot_packets.items():
                    delta = n - self.counted.get(mid, 0)
                    self.counted[mid] = n
                    who = self.speaker_of.get(mid)
                    if who and delta > 0:
                        self.packets_of[who] = self.packets_of.get(who, 0) + delta
            ice = self.webrtc.get_property("ice-connection-state").value_nick
            if ice != last_ice:
                emit({"type": "gst", "event": "ice-connection-state", "state": ice})
                last_ice = ice
            emit({"type": "status", "hz": {w: self.dominant(w) for w in self.peaks}, "packets": dict(self.packets_of),
                  "slots": dict(self.speaker_of), "ice": ice})

    # -- signaling ------------------------------------------------------------------------------------------------

    async def messages(self, ws):
        while True:
            m = await ws.recv()
            if m is None:
                emit({"type": "socket_closed"})
                return "closed"
            if m.get("type") == "answer":
                emit(dict(m, sdp=m.get("sdp")))
            else:
                emit(m)
            t = m.get("type")
            if t == "joined":
                self.want = m.get("audioSlots", 0)
                self.build()
                # webrtcbin asks for negotiation once every sink pad has caps; offer then (or after 5 s anyway).
                try:
                    await asyncio.wait_for(self.negotiation_needed.wait(), 5)
                except asyncio.TimeoutError:
                    emit({"type": "gst", "event": "no on-negotiation-needed within 5 s; offering anyway"})
                await self.negotiate(ws)
            elif t == "renegotiate":
                self.want = max(self.want, m.get("audioSlots", 0))
                await self.negotiate(ws)
            elif t == "answer":
                await self.on_answer(ws, m["sdp"])
            elif t == "speakers":
                self.speaker_of.clear()
                for slot in m.get("slots") or []:
                    if slot.get("mid") is not None:
                        self.speaker_of[str(slot["mid"])] = slot.get("participant")
            elif t == "left":
                return "left"

    async def commands(self, ws):
        while True:
            line = await self.loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return "eof"
            if json.loads(line).get("cmd") == "leave":
                await ws.send({"type": "leave"})
                return "leave"


async def run(args, gst):
    p = Participant(args, gst)
    ws = await asyncio.wait_for(WebSocket.connect("127.0.0.1", args.api), 10)
    await ws.send({"v": 2, "type": "join", "token": args.token})
    bus = status = None
    msgs = asyncio.ensure_future(p.messages(ws))
    cmd = asyncio.ensure_future(p.commands(ws))

    async def start_loops():
        nonlocal bus, status
        while p.pipeline is None:
            await asyncio.sleep(0.05)
        bus = asyncio.ensure_future(p.bus_loop())
        status = asyncio.ensure_future(p.status_loop())
    starter = asyncio.ensure_future(start_loops())
    await asyncio.wait([cmd, msgs], timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
    if msgs.done() and msgs.exception() is not None:
        emit({"type": "crash", "where": "messages", "error": repr(msgs.exception())})
    if cmd.done() and cmd.result() == "leave":
        await asyncio.wait([msgs], timeout=5)
    for task in (starter, bus, status, msgs):
        if task is not None:
            task.cancel()
    ws.close()
    if p.pipeline is not None:
        # Stopping webrtcbin can block in rare cases: bounded, in a worker thread.
        stop = p.loop.run_in_executor(None, p.pipeline.set_state, p.Gst.State.NULL)
        try:
            await asyncio.wait_for(asyncio.shield(stop), 5)
        except asyncio.TimeoutError:
            emit({"type": "gst", "event": "set_state(NULL) took over 5 s"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--api", type=int)
    ap.add_argument("--token")
    ap.add_argument("--hz", type=float, default=660)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--mic-direction", choices=["sendonly", "sendrecv"], default="sendonly")
    ap.add_argument("--keepalive-conncheck", action="store_true",
                    help="set libnice's keepalive-conncheck: keepalives as Binding Requests, not Indications")
    args = ap.parse_args()
    try:
        gst = load_gi()
    except (ImportError, ValueError) as e:
        emit({"type": "unavailable", "error": str(e)})
        return 3
    if args.probe:
        emit({"type": "probe", "gstreamer": gst[0].version_string()})
        return 0
    code = 0
    try:
        asyncio.run(run(args, gst))
    except Exception as e:
        emit({"type": "crash", "error": repr(e)})
        code = 1
    emit({"type": "exit"})
    sys.stdout.flush()
    # Skip interpreter teardown: finalising GStreamer objects from PyGObject's GC at exit can crash.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
