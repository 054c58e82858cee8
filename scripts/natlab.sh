#!/usr/bin/env bash
# A NAT lab of network namespaces on this machine (needs root, iproute2, nftables, coturn):
#   cli 10.0.0.2 --veth-- nat 10.0.0.1 | 198.51.100.1 --veth-- srv 198.51.100.2 + .3
# coturn runs in srv on both IPs (an RFC 5780 server), turnutils_peer echoes UDP on 198.51.100.2:3480.
#
#   scripts/natlab.sh up PREFIX SECRET     create namespaces PREFIX-cli, PREFIX-nat, PREFIX-srv
#   scripts/natlab.sh mode PREFIX MODE     MODE: masquerade | symmetric | fullcone | fullcone-hairpin | udp-blocked | tcp8443-blocked
#   scripts/natlab.sh down PREFIX          stop the daemons and delete the namespaces
#   scripts/natlab.sh exec PREFIX cli CMD  run CMD in PREFIX-cli
# Traffic never leaves the namespaces; addresses are documentation ranges (RFC 5737).
set -euo pipefail

cmd=${1:?usage: natlab.sh up|mode|down|exec PREFIX ...}
p=${2:?PREFIX needed}
cli="$p-cli"; nat="$p-nat"; srv="$p-srv"
run="/run/callsctl-natlab/$p"

case "$cmd" in
up)
  secret=${3:?SECRET needed}
  # The daemons below outlive this script: give them no inherited descriptors beyond 0-2, or a
  # caller waiting for its pipe (or, with Foundation's Process, for this script's exit) waits forever.
  for fd in $(ls /proc/$$/fd); do
    if [[ $fd -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  mkdir -p "$run"
  for ns in "$cli" "$nat" "$srv"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add c0 netns "$cli" type veth peer name n0 netns "$nat"
  ip link add s1 netns "$srv" type veth peer name n1 netns "$nat"
  ip -n "$cli" addr add 10.0.0.2/24 dev c0; ip -n "$cli" link set c0 up
  ip -n "$cli" route add default via 10.0.0.1
  ip -n "$nat" addr add 10.0.0.1/24 dev n0; ip -n "$nat" link set n0 up
  ip -n "$nat" addr add 198.51.100.1/24 dev n1; ip -n "$nat" link set n1 up
  ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$srv" addr add 198.51.100.2/24 dev s1; ip -n "$srv" addr add 198.51.100.3/24 dev s1
  ip -n "$srv" link set s1 up
  ip -n "$srv" route add default via 198.51.100.1
  ip netns exec "$srv" turnserver -n -L 198.51.100.2 -L 198.51.100.3 -E 198.51.100.2 \
    --use-auth-secret --static-auth-secret="$secret" -r calls.test --fingerprint --no-tls --no-dtls --no-cli \
    --allow-loopback-peers --min-port=49152 --max-port=49300 \
    --log-file="$run/turn.log" --no-stdout-log --simple-log --pidfile="$run/turn.pid" >/dev/null 2>&1 &
  echo $! > "$run/turnserver.pid"
  ip netns exec "$srv" turnutils_peer -L 198.51.100.2 -p 3480 >/dev/null 2>&1 &
  echo $! > "$run/peer.pid"
  # Wait (bounded) until coturn answers on its TCP port inside srv.
  for _ in $(seq 1 50); do
    if ip netns exec "$srv" bash -c 'exec 3<>/dev/tcp/198.51.100.2/3478' 2>/dev/null; then break; fi
    sleep 0.1
  done
  sleep 0.3
  ;;
mode)
  mode=${3:?MODE needed}
  f=$(mktemp)
  case "$mode" in
  masquerade|udp-blocked|tcp8443-blocked)
    cat >"$f" <<'NFT'
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "n1" masquerade;
  }
}
NFT
    ;;
  symmetric)
    cat >"$f" <<'NFT'
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "n1" masquerade fully-random;
  }
}
NFT
    ;;
  fullcone|fullcone-hairpin)
    cat >"$f" <<'NFT'
table ip nat {
  chain pre {
    type nat hook prerouting priority dstnat;
    iifname "n1" ip daddr 198.51.100.1 dnat to 10.0.0.2;
  }
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "n1" ip saddr 10.0.0.2 snat to 198.51.100.1;
  }
}
NFT
    ;;
  *) echo "unknown mode $mode" >&2; exit 64 ;;
  esac
  if [[ "$mode" == udp-blocked || "$mode" == tcp8443-blocked ]]; then
    cat >>"$f" <<'NFT'
table inet filter {
  chain forward {
    type filter hook forward priority filter; policy accept;
    meta l4proto udp counter drop;
  }
}
NFT
  fi
  ip netns exec "$nat" nft flush ruleset
  ip netns exec "$nat" nft -f "$f"
  rm -f "$f"
  if [[ "$mode" == fullcone-hairpin ]]; then
    ip netns exec "$nat" nft add rule ip nat pre iifname "n0" ip daddr 198.51.100.1 dnat to 10.0.0.2
    ip netns exec "$nat" nft add rule ip nat post oifname "n0" ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 masquerade
  fi
  if [[ "$mode" == tcp8443-blocked ]]; then
    ip netns exec "$nat" nft add rule inet filter forward tcp dport 8443 drop
  fi
  # Forget NAT mappings made under the previous mode.
  ip netns exec "$nat" bash -c 'command -v conntrack >/dev/null && conntrack -F >/dev/null 2>&1 || true'
  ;;
down)
  for f in "$run/turnserver.pid" "$run/peer.pid"; do
    [[ -f "$f" ]] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  for ns in "$cli" "$nat" "$srv"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n "$pids" ]] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$run"
  ;;
exec)
  where=${3:?cli|nat|srv}; shift 3
  exec ip netns exec "$p-$where" "$@"
  ;;
*) echo "usage: natlab.sh up|mode|down|exec PREFIX ..." >&2; exit 64 ;;
esac
