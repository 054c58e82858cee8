#!/usr/bin/env bash
# The doctor's lab: a media host and a client in network namespaces of their own (needs root, iproute2, nftables,
# coturn, openssl):
#   PREFIX-c 203.0.113.2 (client; a STUN-only coturn for the media host to ask) --veth-- PREFIX-s 203.0.113.1 (media host)
# In PREFIX-s: callsctl serve (API 203.0.113.1:8045, RTC 8443 UDP+TCP) and coturn (3478 UDP/TCP, 5349 TLS, relays on
# 203.0.113.1:49160-49200). Traffic never leaves the namespaces; the addresses are a documentation range (RFC 5737).
#
#   scripts/doctorlab.sh up PREFIX DIR CALLSCTL   create the namespaces and start the daemons (files in DIR)
#   scripts/doctorlab.sh scenario PREFIX NAME     NAME: open | lossy | udp-blocked | direct-blocked | relay-closed |
#                                                 behind-nat (clears what the previous scenario set)
#   scripts/doctorlab.sh down PREFIX DIR          stop the daemons and delete the namespaces
set -euo pipefail

cmd=${1:?usage: doctorlab.sh up|scenario|down PREFIX ...}
p=${2:?PREFIX needed}
srv="$p-s"; cli="$p-c"

case "$cmd" in
up)
  dir=${3:?DIR needed}; callsctl=${4:?CALLSCTL needed}
  # The daemons outlive this script: give them no inherited descriptors beyond 0-2 (a caller waiting on a pipe would
  # wait forever).
  for fd in $(ls /proc/$$/fd); do
    if [[ $fd -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  ip netns add "$srv"; ip netns add "$cli"
  ip -n "$srv" link set lo up; ip -n "$cli" link set lo up
  ip link add "${p}s0" netns "$srv" type veth peer name "${p}c0" netns "$cli"
  ip -n "$srv" addr add 203.0.113.1/24 dev "${p}s0"; ip -n "$srv" link set "${p}s0" up
  ip -n "$cli" addr add 203.0.113.2/24 dev "${p}c0"; ip -n "$cli" link set "${p}c0" up
  # 203.0.113.9 is where the media host's NAT (scenario behind-nat) maps it: the client reaches it through the veth.
  mac=$(ip -n "$srv" -o link show "${p}s0" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip -n "$cli" neigh add 203.0.113.9 lladdr "$mac" dev "${p}c0"
  ip netns exec "$cli" nft -f - <<EOF
table inet lab {
  chain out { type filter hook output priority 0; }
}
EOF
  ip netns exec "$srv" nft -f - <<EOF
table inet lab {
  chain in { type filter hook input priority 0; }
}
table ip labnat {
  chain post { type nat hook postrouting priority 100; }
}
EOF
  head -c 24 /dev/urandom | base64 >"$dir/turn-secret"
  chmod 600 "$dir/turn-secret"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=203.0.113.1 \
    -addext subjectAltName=IP:203.0.113.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
  ip netns exec "$srv" turnserver -n --listening-ip=203.0.113.1 --listening-port=3478 --tls-listening-port=5349 \
    --relay-ip=203.0.113.1 --min-port=49160 --max-port=49200 --use-auth-secret \
    --static-auth-secret="$(cat "$dir/turn-secret")" --realm=lab.test --fingerprint --no-cli --no-dtls \
    --cert="$dir/cert.pem" --pkey="$dir/key.pem" --log-file="$dir/turn.log" --no-stdout-log --simple-log --verbose \
    --pidfile="$dir/turn.pid" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/turn.pids"
  ip netns exec "$cli" turnserver -n --stun-only --listening-ip=203.0.113.2 --listening-port=3478 --no-cli --no-tls \
    --no-dtls --log-file="$dir/stun.log" --no-stdout-log --pidfile="$dir/stun.pid" </dev/null >/dev/null 2>&1 &
  echo $! >>"$dir/turn.pids"
  mkdir -p "$dir/data"
  ip netns exec "$srv" "$callsctl" serve --api-listen 203.0.113.1:8045 --rtc-listen 203.0.113.1:8443 \
    --data-dir "$dir/data" </dev/null >"$dir/serve.log" 2>&1 &
  echo $! >"$dir/serve.pid"
  for _ in $(seq 300); do
    if [[ -s "$dir/data/token-secret" ]] && ip netns exec "$cli" bash -c 'exec 3<>/dev/tcp/203.0.113.1/8045' 2>/dev/null \
      && ip netns exec "$cli" bash -c 'exec 3<>/dev/tcp/203.0.113.1/5349' 2>/dev/null; then
      exit 0
    fi
    sleep 0.1
  done
  echo "the lab did not come up: $(tail -5 "$dir/serve.log") $(tail -5 "$dir/turn.log")" >&2
  exit 1
  ;;
scenario)
  name=${3:?NAME needed}
  ip netns exec "$cli" nft flush chain inet lab out
  ip netns exec "$srv" nft flush chain inet lab in
  ip netns exec "$srv" nft flush chain ip labnat post
  ip netns exec "$cli" tc qdisc del dev "${p}c0" root 2>/dev/null || true
  case "$name" in
  open) ;;
  lossy)
    # 5 % of the client's media datagrams are lost on the way in (a silent drop, as on a real network), and 80 ms of
    # delay on the client's way out where the kernel has sch_netem (prints "delay: netem" or "delay: none").
    ip netns exec "$srv" nft add rule inet lab in ip saddr 203.0.113.2 udp dport 8443 numgen random mod 100 '<' 5 drop
    if ip netns exec "$cli" tc qdisc add dev "${p}c0" root netem delay 80ms 2>/dev/null; then
      echo "delay: netem"
    else
      echo "delay: none"
    fi
    ;;
  udp-blocked) ip netns exec "$srv" nft add rule inet lab in ip saddr 203.0.113.2 udp dport 8443 drop ;;
  direct-blocked)
    # The media port is closed both ways, and TURN is open over TCP and TLS only.
    ip netns exec "$srv" nft add rule inet lab in ip saddr 203.0.113.2 udp dport 8443 drop
    ip netns exec "$srv" nft add rule inet lab in ip saddr 203.0.113.2 tcp dport 8443 drop
    ip netns exec "$srv" nft add rule inet lab in ip saddr 203.0.113.2 udp dport 3478 drop
    ;;
  relay-closed) ip netns exec "$srv" nft add rule inet lab in ip saddr 203.0.113.2 udp dport 49160-49200 drop ;;
  behind-nat) ip netns exec "$srv" nft add rule ip labnat post ip daddr 203.0.113.2 udp dport 3478 snat to 203.0.113.9 ;;
  *) echo "unknown scenario $name" >&2; exit 64 ;;
  esac
  ;;
down)
  dir=${3:-}
  if [[ -n "$dir" ]]; then
    for f in "$dir/serve.pid" "$dir/turn.pids"; do
      [[ -f "$f" ]] && while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$f"
    done
  fi
  for ns in "$srv" "$cli"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  ;;
*) echo "usage: doctorlab.sh up|scenario|down PREFIX ..." >&2; exit 64 ;;
esac
