#!/usr/bin/env python3
"""What call placement costs per join in a cluster, on loopback, against a single node measured in the same run.

Starts a PostgreSQL (Debian's, as the postgres user, in a private network namespace), one single-node
`callsctl serve` (SQLite) and two cluster nodes on that PostgreSQL, then times signaling joins (TCP connect,
WebSocket upgrade, `join`, until `joined`), each on a new connection:

  single/new      single node, each join starts a new call (a new channel): the SQLite policy read
  cluster/new     cluster node n1, each join starts a new call: one claim statement (one database round trip)
  cluster/running cluster node n1, joins to a call already running there: no database round trip
  cluster/redirect  joins sent to n2 for a call running on n1: n2's claim statement finds n1, answers `redirect`,
                  and the client joins again at n1 (a second connection); timed from the first connect to `joined`

Each join's socket then closes (the call of a new channel ends and its claim is released, off the join's path).
Prints one JSON document (milliseconds: p50, p90, p99, mean) and a table. Needs root. Stdlib only.

  sudo python3 bench/cluster_placement.py --callsctl .build/release/callsctl --joins 400
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts", "peers"))
from aiortc_calls import WebSocket  # noqa: E402
from browser_cluster import start_postgres  # noqa: E402
from browser_echo import reexec_in_namespace  # noqa: E402

SECRET = base64.b64decode("YmVuY2gtY2x1c3Rlci1wbGFjZW1lbnQtc2VjcmV0LTAxMjM0NQ==")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(channel, user):
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"channel": channel, "user": user, "iat": now, "exp": now + 3600}, separators=(",", ":")).encode())
    signing = (header + "." + payload).encode()
    return header + "." + payload + "." + b64(hmac.new(SECRET, signing, hashlib.sha256).digest())


def channel_id(prefix, n):
    text = "%s%d" % (prefix, n)
    return (text + "0" * 26)[:26]


def start_serve(callsctl, work, name, api, rtc, extra):
    cmd = [callsctl, "serve", "--data-dir", os.path.join(work, "data-" + name), "--api-listen", "127.0.0.1:%d" % api,
           "--rtc-listen", "127.0.0.1:%d" % rtc, "--token-secret-file", os.path.join(work, "token-secret"),
           "--log-level", "warn"] + extra
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "serve-%s.log" % name), "w"),
                            text=True, env=dict(os.environ, NO_COLOR="1"))
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("data directory:"):
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc


async def join_once(port, tok, ports):
    """Seconds from the first connect to `joined`, and the redirects followed."""
    start = time.perf_counter()
    redirects = 0
    ws = await WebSocket.connect("127.0.0.1", port)
    await ws.send({"v": 2, "type": "join", "token": tok})
    while True:
        m = await ws.recv()
        if m is None:
            raise RuntimeError("closed before joined")
        if m.get("type") == "joined":
            elapsed = time.perf_counter() - start
            ws.close()
            return elapsed, redirects
        if m.get("type") == "redirect":
            redirects += 1
            ws.close()
            ws = await WebSocket.connect("127.0.0.1", int(m["ws"].rsplit(":", 1)[1].split("/")[0]))
            await ws.send({"v": 2, "type": "join", "token": tok})
            continue
        if m.get("type") == "error":
            raise RuntimeError("join refused: %s" % m)


def stats(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000
    return {"n": len(s), "p50": round(pick(0.5), 3), "p90": round(pick(0.9), 3), "p99": round(pick(0.99), 3),
            "mean": round(sum(s) / len(s) * 1000, 3)}


async def measure(args, ports):
    results = {}
    # Warm up every node (first connections, caches, the settings listener).
    for p in ports.values():
        for i in range(20):
            await join_once(p, token(channel_id("warm%d" % p, i), "w"), ports)
    for rep in range(args.rounds):
        cases = {
            "single/new": (ports["single"], lambda i: channel_id("s%dn" % rep, i)),
            "cluster/new": (ports["n1"], lambda i: channel_id("c%dn" % rep, i)),
        }
        for name, (port, chan) in cases.items():
            out = results.setdefault(name, [])
            for i in range(args.joins):
                out.append((await join_once(port, token(chan(i), "u%d" % i), ports))[0])
        # A call held open on n1: joins to it on n1 (no round trip) and through n2 (redirect).
        held_channel = channel_id("held%d" % rep, 0)
        held = await WebSocket.connect("127.0.0.1", ports["n1"])
        await held.send({"v": 2, "type": "join", "token": token(held_channel, "holder")})
        while (await held.recv() or {}).get("type") != "joined":
            pass
        time.sleep(1.5)  # n2 must see the claim's node as live (heartbeats)
        for name, port in (("cluster/running", ports["n1"]), ("cluster/redirect", ports["n2"])):
            out = results.setdefault(name, [])
            for i in range(args.joins):
                elapsed, redirects = await join_once(port, token(held_channel, "r%d" % i), ports)
                if name == "cluster/redirect" and redirects != 1:
                    raise RuntimeError("expected one redirect, got %d" % redirects)
                out.append(elapsed)
        held.close()
    return {k: stats(v) for k, v in results.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callsctl", default=os.environ.get("CALLSCTL_BIN", ".build/release/callsctl"))
    ap.add_argument("--joins", type=int, default=300, help="joins per case and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep")
    args = ap.parse_args()
    code = reexec_in_namespace()
    if code is not None:
        return code
    work = args.keep or tempfile.mkdtemp(prefix="callsctl-placement-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    with open(os.path.join(work, "token-secret"), "w") as f:
        f.write(base64.b64encode(SECRET).decode() + "\n")
    os.chmod(os.path.join(work, "token-secret"), 0o600)
    procs = []
    pg = None
    try:
        pg, url = start_postgres(work, port=25433)
        if url is None:
            print(json.dumps({"ok": False, "error": "PostgreSQL did not start; see %s/postgres.log" % work}))
            return 3
        ports = {"single": 19100, "n1": 19101, "n2": 19102}
        procs.append(start_serve(args.callsctl, work, "single", 19100, 19400, []))
        for name in ("n1", "n2"):
            api = ports[name]
            procs.append(start_serve(args.callsctl, work, name, api, api + 300, [
                "--cluster-db", url, "--cluster-node-id", name, "--cluster-public-url", "http://127.0.0.1:%d" % api]))
        results = asyncio.run(measure(args, ports))
        out = {"ok": True, "joinsPerCase": args.joins * args.rounds, "milliseconds": results,
               "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())}}
        print(json.dumps(out, indent=2))
        print("%-18s %8s %8s %8s %8s" % ("case", "p50", "p90", "p99", "mean"), file=sys.stderr)
        for k, v in results.items():
            print("%-18s %8.3f %8.3f %8.3f %8.3f" % (k, v["p50"], v["p90"], v["p99"], v["mean"]), file=sys.stderr)
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if pg is not None:
            try:
                os.killpg(pg.pid, signal.SIGINT)
                pg.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
