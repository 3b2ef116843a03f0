#!/usr/bin/env bash
# Integration: deploy/slurm on a real Slurm. Starts a two-node cluster on this
# machine (slurm_cluster.sh), then:
#  1. sbatch drover.sbatch runs a job over both nodes; its results come back in
#     order and nothing of drover is left running;
#  2. scancel of a running drover.sbatch allocation leaves nothing running;
#  3. drover-workers.sbatch workers submitted before their coordinator is up wait
#     for it, join, take a job, and a second allocation added mid-job joins too;
#     scancel removes them, and the job still completes.
# Exit 77 (skipped) without root or Slurm. Run it under tests/deploy/subreaper.py
# (ctest does) so that daemons and killed processes are reaped even where PID 1
# does not reap orphans.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/deploy/test_lib.sh"
export DROVER_BIN_DIR=$(cd "${DROVER_BIN_DIR:-$root/build/bin}" && pwd)  # jobs run elsewhere
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (slurmd runs jobs as their user)"; exit 77; fi
for program in slurmctld slurmd sbatch munged; do
  command -v "$program" >/dev/null || { echo "SKIP: $program is not installed (scripts/install-deps)"; exit 77; }
done
source "$root/tests/deploy/slurm_cluster.sh"

work=$(mktemp -d /tmp/drover-slurm-XXXXXX)
chmod 0755 "$work"
cd "$work"
coordinator_pid=""
finish() {
  local status=$?
  set +e
  [ -n "$coordinator_pid" ] && kill -TERM "$coordinator_pid" 2>/dev/null
  slurm_cluster_stop "$work"
  if [ "$status" != 0 ]; then
    echo "--- logs in $work (kept)" >&2
    tail -n 30 "$work"/*.out "$work"/slurm*.log >&2 2>/dev/null
  else
    rm -rf "$work"
  fi
}
trap finish EXIT
# No drover process (running or not yet reaped) is left.
drover_left() {  # live processes of drover's programs (zombies and this check aside)
  ps -eo pid=,stat=,args= | awk -v bin="$DROVER_BIN_DIR/drover" '$2 !~ /^Z/ && index($0, bin) && !/awk -v bin/'
}
no_drover_left() { [ -z "$(drover_left)" ]; }
# At least $2 processes of drover-$1 run.
running() { [ "$(pgrep -f "$DROVER_BIN_DIR/drover-$1" | wc -l)" -ge "$2" ]; }
# At least $1 tasks (sleep 600) run under workers.
tasks_running() { [ "$(pgrep -f "^sleep 600" | wc -l)" -ge "$1" ]; }

slurm_cluster_start "$work"
export DROVER_WORKER_FLAGS=--allow-root  # slurmd runs this test's jobs as root

echo "== 1. a job over two nodes"
sbatch --wait -N 2 -o one.out "$root/deploy/slurm/drover.sbatch" \
    ::: a b c d e f -- sh -c 'sleep 0.3; echo {} $SLURMD_NODENAME' >/dev/null || fail "the job failed: $(cat one.out)"
grep -E '^[a-f] n[12]$' one.out | cut -d' ' -f1 | tr -d '\n' | grep -qx abcdef || fail "results out of order: $(cat one.out)"
[ "$(grep -E '^[a-f] n[12]$' one.out | cut -d' ' -f2 | sort -u | tr '\n' ' ')" = "n1 n2 " ] || fail "not both nodes: $(cat one.out)"
wait_for 30 no_drover_left || fail "drover processes left: $(drover_left)"
[ -z "$(ls -A | grep '^\.drover-')" ] || fail "the job's credentials directory was left behind"

echo "== 2. scancel of a running allocation"
job=$(sbatch --parsable -N 2 -o two.out "$root/deploy/slurm/drover.sbatch" ::: 1 2 3 4 -- sleep 600)
wait_for 60 running worker 2 || fail "workers did not start: $(cat two.out)"
wait_for 30 tasks_running 2 || fail "tasks did not start: $(cat two.out)"
scancel "$job"
wait_for 60 no_drover_left || fail "drover processes left after scancel: $(drover_left)"
! pgrep -f "^sleep 600" >/dev/null || fail "tasks left after scancel"

echo "== 3. workers that join a coordinator elsewhere, added and removed mid-job"
port_workers=$(free_port); port_clients=$(free_port)
first=$(sbatch --parsable -N 1 -o three-a.out "$root/deploy/slurm/drover-workers.sbatch" \
    --coordinator "tcp://127.0.0.1:$port_workers" --allow-root)
wait_for 60 running worker 1 || fail "workers did not start: $(cat three-a.out)"
# The worker is up before the coordinator: it waits and retries.
"$DROVER_BIN_DIR/drover-coordinator" --listen-workers "tcp://127.0.0.1:$port_workers" \
    --listen-clients "127.0.0.1:$port_clients" --heartbeat 0.2 --worker-timeout 2 2>coordinator.log &
coordinator_pid=$!
drover() { "$DROVER_BIN_DIR/drover" --coordinator "127.0.0.1:$port_clients" "$@"; }
registered() { [ "$(drover workers 2>/dev/null | tail -n +2 | wc -l)" -ge "$1" ]; }
wait_for 30 registered 1 || fail "the early worker did not join: $(cat three-a.out coordinator.log)"
job=$(drover submit --retries 2 --range 0:12 -- sh -c 'sleep 0.5; echo {}')
second=$(sbatch --parsable -N 1 -o three-b.out "$root/deploy/slurm/drover-workers.sbatch" \
    --coordinator "tcp://127.0.0.1:$port_workers" --allow-root)
wait_for 60 registered 2 || fail "the added worker did not join: $(cat three-b.out)"
scancel "$first"
drover wait --quiet "$job" || fail "the job did not complete after a node left: $(drover status "$job")"
[ "$(drover results "$job" | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 8 9 10 11 " ] || fail "wrong results: $(drover results "$job")"
scancel "$second"
kill -TERM "$coordinator_pid"; wait "$coordinator_pid" || true; coordinator_pid=""
wait_for 60 no_drover_left || fail "drover processes left: $(drover_left)"
echo "PASS"
