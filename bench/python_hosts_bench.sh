#!/usr/bin/env bash
# The article's CPU job through drover.Pool on one worker host, then on two:
# network namespaces stand in for a coordinator host and two worker hosts (2
# slots each), as in tests/deploy/netns_test.sh, joined by a bridge, workers
# with CURVE keys and the client with a token. Prints the wall time of
# pool.map(cpu_bound, [10**7] * 8) on each (median of REPEAT) and the speedup,
# first with 2 slots per host (the issue's figure), then with 1. Every namespace
# shares this machine's cores: on 2 cores, two hosts of 2 slots cannot beat one
# (that row measures what the second host costs); two hosts of 1 slot can.
#   bench/python_hosts_bench.sh [REPEAT]     (root; scripts/build first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${DROVER_BIN_DIR:-$root/build/bin}
python=$root/build/venv/bin/python
repeat=${1:-3}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
tag="drb$$"
work=$(mktemp -d /tmp/drover-hosts-bench-XXXXXX)
pids=()
finish() {
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in c w1 w2 sw; do ip netns del "$tag-$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap finish EXIT
in_ns() { local ns=$1; shift; ip netns exec "$tag-$ns" "$@"; }
ip netns add "$tag-sw"
in_ns sw ip link add br0 type bridge
in_ns sw ip link set br0 up
host() {  # host NAME LAST_OCTET
  ip netns add "$tag-$1"
  ip link add eth0 netns "$tag-$1" type veth peer name "$1" netns "$tag-sw"
  in_ns sw ip link set "$1" master br0 up
  in_ns "$1" ip link set lo up
  in_ns "$1" ip route del local 127.0.0.0/8 dev lo table local
  in_ns "$1" ip addr add 127.0.0.1/32 dev lo
  in_ns "$1" sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1
  in_ns "$1" ip addr add "127.100.0.$2/24" dev eth0
  in_ns "$1" ip link set eth0 up
}
host c 1
host w1 2
host w2 3
"$bin/drover" keygen "$work/coordinator" >/dev/null
"$bin/drover" keygen "$work/worker" >/dev/null
cp "$work/worker.pub" "$work/authorized"
(umask 077 && head -c 32 /dev/urandom | base64 >"$work/token")
ip netns exec "$tag-c" "$bin/drover-coordinator" --listen-workers tcp://127.100.0.1:7341 \
    --listen-clients 127.100.0.1:7340 --curve-key "$work/coordinator.key" --authorized-keys "$work/authorized" \
    --token-file "$work/token" 2>"$work/coordinator.log" &
pids+=($!)
start_worker() {  # start_worker HOST SLOTS
  ip netns exec "$tag-$1" "$bin/drover-worker" --coordinator tcp://127.100.0.1:7341 --slots "$2" --name "host-$1-$2" \
      --allow-root --python /usr/bin/python3 --curve-key "$work/worker.key" \
      --coordinator-key "$work/coordinator.pub" 2>"$work/worker-$1.log" &
  pids+=($!)
  workers+=($!)
}
stop_workers() {
  for pid in "${workers[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
  workers=()
}
measure() {  # measure HOSTS: the median wall time of the map with HOSTS workers registered
  in_ns c "$python" - "$work/token" "$1" "$repeat" <<'EOF'
import statistics, sys, time
from drover import Pool

def cpu_bound(n):
    return sum(i * i for i in range(n))

token_file, hosts, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Pool("127.100.0.1:7340", token_file=token_file) as pool:
    deadline = time.monotonic() + 30
    while len([w for w in pool.workers() if not w.draining]) != hosts:
        assert time.monotonic() < deadline, "the workers did not join"
        time.sleep(0.05)
    pool.map(cpu_bound, [10] * 8)  # every slot's interpreter is up
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        pool.map(cpu_bound, [10**7] * 8)
        walls.append(time.perf_counter() - start)
    print(statistics.median(walls))
EOF
}
workers=()
echo "pool.map(cpu_bound, [10**7] * 8), medians of $repeat, $(nproc) cores shared by every namespace"
for slots in 2 1; do
  start_worker w1 "$slots"
  one=$(measure 1)
  start_worker w2 "$slots"
  two=$(measure 2)
  stop_workers
  printf '%-32s %8.3f s\n' "1 worker host, $slots slot(s)" "$one" "2 worker hosts, $slots slot(s) each" "$two"
  printf '%-32s %8.2fx\n' "speedup" "$(python3 -c "print($one / $two)")"
done
