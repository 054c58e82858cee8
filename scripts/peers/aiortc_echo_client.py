#!/usr/bin/env python3
"""aiortc peer for callsctl's media server echo test.

Protocol (one JSON object per line):
  stdout <- {"type": "offer", "sdp": "..."}        the offer: one audio track playing a sine tone
  stdin  -> {"sdp": "..."}                          the server's answer
  stdout <- {"packets": N, "frames": N, "dominant_hz": F, "ice": "...", "seconds": S}

It records the audio it receives back for --seconds and reports the dominant frequency of what it decoded, so a test
can assert that the server echoed *this* tone. Needs `pip install aiortc numpy`. aioice skips loopback addresses when
gathering; this script gathers 127.0.0.1 only (the server is an ICE-lite host on loopback in tests).
"""
import argparse
import asyncio
import fractions
import json
import sys
import time

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frequency", type=float, default=440.0, help="tone frequency in Hz (default 440)")
    p.add_argument("--seconds", type=float, default=4.0, help="how long to record the echo (default 4)")
    p.add_argument("--timeout", type=float, default=20.0, help="overall limit in seconds (default 20)")
    return p.parse_args()


def sine_track(frequency, amplitude=0.3):
    """An aiortc audio track playing a sine tone in real time (20 ms mono frames at 48 kHz), like a microphone."""
    import av
    from aiortc.mediastreams import MediaStreamTrack

    class SineTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self):
            super().__init__()
            self.rate, self.samples, self.pts, self.start = 48000, 960, 0, None

        async def recv(self):
            if self.start is None:
                self.start = time.time()
            # Pace in real time, as a microphone would.
            wait = self.start + self.pts / self.rate - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            t = (np.arange(self.samples) + self.pts) / self.rate
            pcm = (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = self.pts
            frame.time_base = fractions.Fraction(1, self.rate)
            self.pts += self.samples
            return frame

    return SineTrack()


async def run(args):
    import aioice.ice
    import av
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

    pc = RTCPeerConnection()
    pc.addTrack(sine_track(args.frequency))
    chunks = []
    frames = {"n": 0}
    recording = {"task": None}

    async def record(track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            frames["n"] += 1
            data = frame.to_ndarray()
            # Interleaved stereo s16 comes as shape (1, 2 * samples): keep the left channel.
            channels = len(frame.layout.channels)
            mono = data.reshape(-1)[::channels] if channels > 1 else data.reshape(-1)
            chunks.append((frame.sample_rate, mono.astype(np.float64)))

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio":
            recording["task"] = asyncio.ensure_future(record(track))

    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}), flush=True)

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("no answer on stdin")
    answer = json.loads(line)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    started = time.time()
    await asyncio.sleep(args.seconds)

    packets = 0
    stats = await pc.getStats()
    for s in stats.values():
        if s.type == "inbound-rtp":
            packets += s.packetsReceived

    dominant = 0.0
    rate = chunks[0][0] if chunks else 48000
    samples = np.concatenate([c for _, c in chunks]) if chunks else np.zeros(0)
    skip = int(0.5 * rate)  # let the decoder settle
    if len(samples) > skip + 4800:
        x = samples[skip:]
        x = x - x.mean()
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
        dominant = float(freqs[int(np.argmax(spectrum[1:])) + 1])

    result = {
        "packets": packets,
        "frames": frames["n"],
        "dominant_hz": dominant,
        "ice": pc.iceConnectionState,
        "seconds": round(time.time() - started, 2),
    }
    if recording["task"]:
        recording["task"].cancel()
    await pc.close()
    print(json.dumps(result), flush=True)


def main():
    args = parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args), timeout=args.timeout))
    except asyncio.TimeoutError:
        print(json.dumps({"error": f"timed out after {args.timeout} s"}), flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
