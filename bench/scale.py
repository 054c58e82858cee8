#!/usr/bin/env python3
"""Scale runs of `callsctl loadtest` against a release `callsctl serve` on loopback, with the forwarding ceiling
measured in the same run. One command:

    bench/scale.py                      # the three runs of the performance doc (about 3 minutes)
    bench/scale.py --quick              # small versions of them (a smoke test, ~40 s)
    bench/scale.py --json out.json      # also write the figures as JSON

Runs (each on a fresh server):
  1 call x 1,000 participants x 2 speakers        (the large-call target: loss < 0.5 %, p99 latency < 5 ms)
  50 calls x 4 participants x 1 speaker
  1 call x 50 participants x 1 speaker + 1 presenter (a VP8 screen)

Per run: joins, loss per listener (audio, and screen per viewer), the server's CPU (from /proc) in cores and per
forwarded packet (the CPU of the media seconds, one sample a second), its RSS (before and after, and per participant), forwarded packets per second (egress, from
/metrics), and the p99 forwarding latency (the server's own histogram, receive to send). The ceiling: SRTP protect +
batched sendmmsg of the same 160-byte packets on one core (`callsctl-bench ceiling`); the server's CPU per
forwarded packet is reported as a multiple of it, and its egress rate as a fraction of what one core could send.

The generator (`callsctl loadtest`) and the server share the machine's cores; the table says so. Loopback only.
Exit: 0 when every run joined everyone, 1 otherwise.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = [
    # name, calls, participants, speakers, presenters, duration, ramp
    ("1 x 1000 x 2 speakers", 1, 1000, 2, 0, 20, 150),
    ("50 x 4 x 1 speaker", 50, 4, 1, 0, 20, 100),
    ("1 x 50 x 1 speaker + 1 presenter", 1, 50, 1, 1, 20, 50),
]
QUICK = [
    ("1 x 100 x 2 speakers", 1, 100, 2, 0, 5, 100),
    ("10 x 4 x 1 speaker", 10, 4, 1, 0, 5, 100),
    ("1 x 10 x 1 speaker + 1 presenter", 1, 10, 1, 1, 5, 50),
]


def build():
    # One release build folder for both (scripts/bench.sh uses it too).
    for product in ("callsctl", "callsctl-bench"):
        print("building %s (release)..." % product, file=sys.stderr)
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", os.path.join(ROOT, ".build-release"),
                        "--product", product], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return (os.path.join(ROOT, ".build-release/release/callsctl"), os.path.join(ROOT, ".build-release/release/callsctl-bench"))


def metrics(api):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api, timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def latency_p99(before, after):
    """p99 of callsctl_forward_latency_seconds between two scrapes (cumulative buckets), in ms."""
    buckets = []
    for name, value in after.items():
        m = re.match(r'callsctl_forward_latency_seconds_bucket\{le="([^"]+)"\}', name)
        if m:
            bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((bound, value - before.get(name, 0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    # Linear inside the bucket that holds the 99th percentile (as Prometheus' histogram_quantile does).
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= 0.99 * total:
            if bound == float("inf"):
                return lower * 1000
            share = (0.99 * total - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return None


def forwarded(m):
    return sum(v for k, v in m.items() if k.startswith("callsctl_forwarded_packets_total"))


def run_one(callsctl, spec, work, serve_args=()):
    name, calls, participants, speakers, presenters, duration, ramp = spec
    data = os.path.join(work, "data-%d" % abs(hash(name)))
    log = open(os.path.join(work, "serve.log"), "a")
    serve = subprocess.Popen([callsctl, "serve", "--data-dir", data, "--api-listen", "127.0.0.1:0",
                              "--rtc-listen", "127.0.0.1:0", "--max-participants", "5000"] + list(serve_args),
                             stdout=subprocess.PIPE, stderr=log, text=True)
    api = None
    deadline = time.time() + 30
    while time.time() < deadline and api is None:
        line = serve.stdout.readline()
        if not line:
            break
        if line.startswith("api listening on "):
            api = int(line.rsplit(":", 1)[1])
    try:
        if api is None:
            return {"run": name, "error": "serve did not start; see %s/serve.log" % work}
        before = metrics(api)
        cmd = [callsctl, "loadtest", "--url", "http://127.0.0.1:%d" % api, "--token-secret-file",
               os.path.join(data, "token-secret"), "--calls", str(calls), "--participants", str(participants),
               "--speakers", str(speakers), "--presenters", str(presenters), "--duration", str(duration),
               "--ramp", str(ramp), "--join-timeout", "60", "--server-pid", str(serve.pid), "--json"]
        started = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + participants * calls / ramp + 240)
        after = metrics(api)
        try:
            report = json.loads(r.stdout)
        except ValueError:
            return {"run": name, "error": "loadtest printed no report (exit %d): %s" % (r.returncode, r.stderr[-400:])}
        media_seconds = report["media"]["seconds"] or duration
        fwd = forwarded(after) - forwarded(before)
        cpu = report["server"].get("cpuSeconds")
        timeline = [s for s in report.get("timeline", []) if s.get("phase") == "media" and s.get("serverCores") is not None]
        total = calls * participants
        return {
            "run": name, "participants": total, "joined": report["joins"]["joined"],
            "joinP99": report["joins"]["p99Seconds"], "audioLoss": report["media"]["meanLoss"],
            "worstAudioLoss": report["media"]["worstLoss"], "videoLoss": report.get("video", {}).get("meanLoss"),
            "jitterMs": report["media"].get("meanJitterMs"),
            "serverCores": (sum(s["serverCores"] for s in timeline) / len(timeline)) if timeline else None,
            "serverCPUSeconds": cpu, "forwarded": fwd, "egressPerSecond": fwd / max(time.time() - started, 1),
            "mediaEgressPerSecond": fwd / media_seconds,
            # CPU of the media seconds only (joins cost CPU too, but forward nothing).
            "cpuPerForwardedUs": (sum(x["serverCores"] for x in timeline) / fwd * 1e6) if timeline and fwd else None,
            "rssBefore": report["server"].get("rssBytesBefore"), "rssAfter": report["server"].get("rssBytesAfter"),
            "latencyP99Ms": latency_p99(before, after), "loadtestExit": r.returncode,
        }
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small versions of the runs")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--callsctl", help="use this callsctl (default: build the release one)")
    ap.add_argument("--bench", help="use this callsctl-bench (default: build the release one)")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                    help="pass ARG to every `callsctl serve` (repeat it), e.g. --serve-arg=--realtime-priority=10")
    ap.add_argument("--only", metavar="N", help="run only these runs, by number from 1 (e.g. 1 or 1,3)")
    args = ap.parse_args()
    if args.callsctl and args.bench:
        callsctl, bench = args.callsctl, args.bench
    else:
        callsctl, bench = build()
    work = tempfile.mkdtemp(prefix="callsctl-scale-")
    results = []
    ok = True
    specs = QUICK if args.quick else RUNS
    if args.only:
        try:
            picked = [int(x) for x in args.only.split(",")]
        except ValueError:
            ap.error("--only takes run numbers separated by commas, e.g. --only 1,3 (got %r)" % args.only)
        bad = [n for n in picked if not 1 <= n <= len(specs)]
        if bad:
            ap.error("--only: there are runs 1 to %d (got %s)" % (len(specs), ",".join(map(str, bad))))
        specs = [specs[n - 1] for n in picked]
    if args.serve_arg:
        print("serve options: %s" % " ".join(args.serve_arg), file=sys.stderr)
    for spec in specs:
        print("run: %s..." % spec[0], file=sys.stderr)
        res = run_one(callsctl, spec, work, args.serve_arg)
        ok = ok and "error" not in res and res["joined"] == res["participants"]
        results.append(res)
    ceiling = json.loads(subprocess.run([bench, "ceiling", "--json"], capture_output=True, text=True, check=True).stdout)
    ceiling_ns = ceiling[0]["nsPerOp"]
    machine = "%s x %s, %s" % (os.cpu_count(), next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                                      if l.startswith("model name")), "?"), os.uname().release)
    print("\nmachine: %s; ceiling (SRTP protect + sendmmsg, one core): %d ns/packet = %.0f packets/s\n"
          % (machine, ceiling_ns, 1e9 / ceiling_ns))
    print("| run | joined | loss (audio / screen) | jitter | server CPU (cores) | CPU per forwarded packet | x ceiling "
          "| egress packets/s | of one core's ceiling | p99 latency | RSS before → after | per participant |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print("| %s | error: %s |" % (r["run"], r["error"]))
            continue
        per = r["cpuPerForwardedUs"]
        rss = "%.1f → %.1f MB" % (r["rssBefore"] / 1e6, r["rssAfter"] / 1e6) if r["rssBefore"] and r["rssAfter"] else "?"
        per_participant = "%.0f KiB" % ((r["rssAfter"] - r["rssBefore"]) / 1024 / r["participants"]) \
            if r["rssBefore"] and r["rssAfter"] else "?"
        print("| %s | %d of %d | %.2f %% / %s | %s | %s | %s | %s | %.0f | %.1f %% | %s | %s | %s |" % (
            r["run"], r["joined"], r["participants"], r["audioLoss"] * 100,
            "%.2f %%" % (r["videoLoss"] * 100) if r["videoLoss"] is not None and "presenter" in r["run"] else "–",
            "%.1f ms" % r["jitterMs"] if r["jitterMs"] is not None else "?",
            "%.2f" % r["serverCores"] if r["serverCores"] is not None else "?",
            "%.2f µs" % per if per else "?", "%.2f" % (per * 1000 / ceiling_ns) if per else "?",
            r["mediaEgressPerSecond"], r["mediaEgressPerSecond"] * ceiling_ns / 1e7,
            "%.2f ms" % r["latencyP99Ms"] if r["latencyP99Ms"] else "?", rss, per_participant))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "ceilingNsPerPacket": ceiling_ns, "runs": results}, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
