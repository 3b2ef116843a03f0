#!/usr/bin/env bash
# Integration: several hosts on one machine. Network namespaces stand in for a
# coordinator host and two worker hosts, joined by veth pairs to a bridge in a
# fourth ("switch") namespace, with addresses 127.100.0.x that exist only
# there (each host deletes the local 127.0.0.0/8 route and sets route_localnet).
# Workers join with CURVE keys, clients with a token. Tests:
#  1. a job runs across both worker hosts;
#  2. a worker host cut off (its link down) mid-job: its work moves, the job
#     completes with every result once;
#  3. the host comes back and rejoins;
#  4. 30% packet loss into one worker host (nftables numgen drop): a job still
#     completes correctly.
# Needs root; exit 77 (skipped) where namespaces cannot be made.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/deploy/test_lib.sh"
bin=${DROVER_BIN_DIR:-$root/build/bin}
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root to make network namespaces"; exit 77; fi
for program in ip nft; do
  command -v "$program" >/dev/null || { echo "SKIP: $program is not installed (scripts/install-deps)"; exit 77; }
done
tag="drv$$"
if ! ip netns add "$tag-probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces here"; exit 77; fi
ip netns del "$tag-probe"

work=$(mktemp -d /tmp/drover-netns-XXXXXX)
pids=()
finish() {
  local status=$?
  set +e
  # TERM (background jobs of a script ignore INT); KILL what is left after 10 s.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ns in c w1 w2 sw; do ip netns del "$tag-$ns" 2>/dev/null; done
  if [ "$status" != 0 ]; then
    echo "--- logs in $work (kept)" >&2
    tail -n 20 "$work"/*.log >&2
  else
    rm -rf "$work"
  fi
}
trap finish EXIT
in_ns() { local ns=$1; shift; ip netns exec "$tag-$ns" "$@"; }

# The switch, and one host per namespace on it.
ip netns add "$tag-sw"
in_ns sw ip link add br0 type bridge
in_ns sw ip link set br0 up
host() {  # host NAME LAST_OCTET
  local name=$1 address="127.100.0.$2"
  ip netns add "$tag-$name"
  ip link add eth0 netns "$tag-$name" type veth peer name "$name" netns "$tag-sw"
  in_ns sw ip link set "$name" master br0 up
  in_ns "$name" ip link set lo up
  in_ns "$name" ip route del local 127.0.0.0/8 dev lo table local
  in_ns "$name" ip addr add 127.0.0.1/32 dev lo   # loopback itself still works
  in_ns "$name" sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1
  in_ns "$name" ip addr add "$address/24" dev eth0
  in_ns "$name" ip link set eth0 up
}
host c 1
host w1 2
host w2 3

# Credentials, as on a real cluster.
"$bin/drover" keygen "$work/coordinator" >/dev/null
"$bin/drover" keygen "$work/worker" >/dev/null
cp "$work/worker.pub" "$work/authorized"
(umask 077 && head -c 32 /dev/urandom | base64 >"$work/token")

# (Started with `ip netns exec` itself, not through in_ns: $! must be the program.)
ip netns exec "$tag-c" "$bin/drover-coordinator" --listen-workers tcp://127.100.0.1:7341 --listen-clients 127.100.0.1:7340 \
    --curve-key "$work/coordinator.key" --authorized-keys "$work/authorized" --token-file "$work/token" \
    --heartbeat 0.2 --worker-timeout 2 2>"$work/coordinator.log" &
pids+=($!)
for w in w1 w2; do
  ip netns exec "$tag-$w" "$bin/drover-worker" --coordinator tcp://127.100.0.1:7341 --slots 2 --name "host-$w" --allow-root \
      --curve-key "$work/worker.key" --coordinator-key "$work/coordinator.pub" 2>"$work/worker-$w.log" &
  pids+=($!)
done
drover() { in_ns c "$bin/drover" --coordinator 127.100.0.1:7340 --token-file "$work/token" "$@"; }
registered() { [ "$(drover workers 2>/dev/null | tail -n +2 | wc -l)" -eq "$1" ]; }
wait_for 30 registered 2 || fail "the workers did not join across the network"
expected() { seq 0 $(($1 - 1)) | tr '\n' ' '; }

echo "== 1. a job across two hosts"
out=$(drover --json run --range 0:16 -- sh -c 'sleep 0.1; echo {}')
[ "$(echo "$out" | grep -o '"output":"[0-9]*' | cut -d'"' -f4 | tr '\n' ' ')" = "$(expected 16)" ] \
  || fail "wrong results: $out"
for w in w1 w2; do echo "$out" | grep -q "\"worker\":\"host-$w\"" || fail "nothing ran on host-$w"; done

echo "== 2. a host cut off mid-job"
job=$(drover submit --range 0:40 -- sh -c 'sleep 0.2; echo {}')
held_by_w1() { drover --json workers | grep '"name":"host-w1"' | grep -q '"chunksHeld":[1-9]'; }
wait_for 20 held_by_w1 || fail "host-w1 got no work"
in_ns sw ip link set w1 down
drover wait --quiet "$job" || fail "the job did not complete without host-w1: $(drover status "$job")"
[ "$(drover results "$job" | tr '\n' ' ')" = "$(expected 40)" ] || fail "results lost or doubled: $(drover results "$job")"
grep -q "lost" "$work/coordinator.log" || fail "the coordinator never declared host-w1 lost"

echo "== 3. the host comes back and rejoins"
in_ns sw ip link set w1 up
wait_for 30 registered 2 || fail "host-w1 did not rejoin: $(drover workers)"
out=$(drover --json run --range 0:16 -- sh -c 'sleep 0.1; echo {}')
echo "$out" | grep -q '"worker":"host-w1"' || fail "the rejoined host ran nothing"

echo "== 4. 30% packet loss into host-w2"
in_ns w2 nft add table inet loss
in_ns w2 nft add chain inet loss input '{ type filter hook input priority 0; policy accept; }'
in_ns w2 nft add rule inet loss input iifname eth0 numgen random mod 100 '<' 30 counter drop
job=$(drover submit --range 0:300 -- sh -c 'echo {}')
drover wait --quiet "$job" || fail "the job did not complete under loss: $(drover status "$job")"
[ "$(drover results "$job" | tr '\n' ' ')" = "$(expected 300)" ] || fail "results wrong under loss: $(drover results "$job")"
dropped=$(in_ns w2 nft list ruleset | grep -o 'packets [0-9]*' | head -1 | cut -d' ' -f2)
[ "${dropped:-0}" -gt 0 ] || fail "the loss rule dropped nothing"
echo "PASS ($dropped packets dropped into host-w2)"
