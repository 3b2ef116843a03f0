#!/usr/bin/env bash
# Integration: deploy/slurm on a real Slurm. Starts a two-node cluster on this
# machine (slurm_cluster.sh), then:
#  1. sbatch drover.sbatch runs a job over both nodes; its output holds only its
#     results, in order, and nothing of drover is left running or on disk;
#     The same as an ordinary user (nobody);
#  2. workers that cannot start (root without --allow-root) fail the allocation
#     at once with their message, instead of leaving it waiting;
#  3. scancel of a running drover.sbatch allocation leaves nothing running;
#  4. an allocation that hits its time limit keeps the job's state, and the same
#     command submitted again completes it with every result once;
#  5. drover-workers.sbatch workers submitted before their coordinator is up wait
#     for it, join, take a job, and a second allocation added mid-job joins too;
#     scancel of one while a task runs on it: the job still succeeds, without
#     --retries, every result once;
#  6. no process of the test is left (slurmstepd included).
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
# Every process this test starts, through Slurm too (sbatch passes the
# environment on), carries this mark: the checks below see only this test's
# processes, so the test runs beside the rest of the suite.
export DROVER_TEST_MARK="slurm-test-$$-$RANDOM"
ours() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qx "DROVER_TEST_MARK=$DROVER_TEST_MARK"; }
# Live processes of this test whose command line matches the regular expression $1.
ours_matching() {
  local pid
  for pid in $(pgrep -f "$1"); do
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && ours "$pid" && echo "$pid"
  done
  return 0
}
# No drover process (running or not yet reaped) is left.
drover_left() {  # live processes of drover's programs, with their command lines
  local pid
  for pid in $(ours_matching "$DROVER_BIN_DIR/drover"); do echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline")"; done
}
no_drover_left() { [ -z "$(drover_left)" ]; }
# At least $2 processes of drover-$1 run.
running() { [ "$(ours_matching "$DROVER_BIN_DIR/drover-$1" | wc -l)" -ge "$2" ]; }
# At least $1 tasks (sleep 600) run under workers.
tasks_running() { [ "$(ours_matching "^sleep 600" | wc -l)" -ge "$1" ]; }
# A task (sleep 3) runs.
tasks_of_first_running() { [ -n "$(ours_matching "^sleep 3")" ]; }
# slurmstepd processes of this test's cluster (their working directory is under $work).
stepd_left() {
  local pid
  for pid in $(pgrep -x slurmstepd); do
    case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in "$work"*) echo "$pid";; esac
  done
}
no_stepd_left() { [ -z "$(stepd_left)" ]; }

slurm_cluster_start "$work"
export DROVER_WORKER_FLAGS=--allow-root  # slurmd runs this test's jobs as root
export DROVER_SHARED_DIR="$work/shared"
sbatch_script="$root/deploy/slurm/drover.sbatch"

echo "== 1. a job over two nodes: its output is its results"
sbatch --wait -N 2 -o one.out "$sbatch_script" \
    ::: a b c d e f -- sh -c 'sleep 0.3; echo {} $SLURMD_NODENAME' >/dev/null || fail "the job failed: $(cat one.out)"
[ "$(wc -l <one.out)" = 6 ] && ! grep -qvE '^[a-f] n[12]$' one.out || fail "not only the results: $(cat one.out)"
cut -d' ' -f1 one.out | tr -d '\n' | grep -qx abcdef || fail "results out of order: $(cat one.out)"
[ "$(cut -d' ' -f2 one.out | sort -u | tr '\n' ' ')" = "n1 n2 " ] || fail "not both nodes: $(cat one.out)"
wait_for 30 no_drover_left || fail "drover processes left: $(drover_left)"
[ -z "$(ls -A "$DROVER_SHARED_DIR")" ] || fail "left behind after success: $(ls -A "$DROVER_SHARED_DIR")"

echo "== 1b. the same as an ordinary user (no --allow-root needed)"
mkdir -m 0755 user && chown nobody user
if ! runuser -u nobody -- test -x "$DROVER_BIN_DIR/drover-worker"; then
  echo "(skipped: user nobody cannot reach $DROVER_BIN_DIR from this checkout's place)"
else
(cd user && runuser -u nobody -- env DROVER_SHARED_DIR="$work/user/shared" DROVER_WORKER_FLAGS= \
    sbatch --wait -N 2 -o user.out "$sbatch_script" ::: a b c -- sh -c 'echo {} $(id -un)' >/dev/null) ||
    fail "the job failed as nobody: $(cat user/user.out)"
[ "$(tr '\n' ' ' <user/user.out)" = "a nobody b nobody c nobody " ] || fail "as nobody: $(cat user/user.out)"
[ -z "$(ls -A user/shared)" ] || fail "left behind as nobody: $(ls -A user/shared)"
wait_for 30 no_drover_left || fail "drover processes left: $(drover_left)"
fi

echo "== 2. workers that cannot start fail the allocation at once"
status=0
DROVER_WORKER_FLAGS= timeout 120 sbatch --wait -N 2 -o two.out "$sbatch_script" ::: a -- echo {} \
    >/dev/null || status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || fail "the allocation did not fail at once (status $status): $(cat two.out)"
grep -q "the workers' step ended" two.out || fail "no word of the workers: $(cat two.out)"
grep -q -- "--allow-root" two.out || fail "the workers' own message is missing: $(cat two.out)"
wait_for 30 no_drover_left || fail "drover processes left: $(drover_left)"
rm -rf "${DROVER_SHARED_DIR:?}"/*  # its logs (kept, as it failed)

echo "== 3. scancel of a running allocation"
job=$(sbatch --parsable -N 2 -o three.out "$sbatch_script" ::: 1 2 3 4 -- sleep 600)
wait_for 60 running worker 2 || fail "workers did not start: $(cat three.out)"
wait_for 30 tasks_running 2 || fail "tasks did not start: $(cat three.out)"
scancel "$job"
wait_for 60 no_drover_left || fail "drover processes left after scancel: $(drover_left)"
[ -z "$(ours_matching "^sleep 600")" ] || fail "tasks left after scancel"
rm -rf "${DROVER_SHARED_DIR:?}"/*  # its state and logs (kept, as it did not complete)

echo "== 4. a time limit, then the same command again"
# 2 slots, 360 tasks of 0.5 s: 90 s of work; Slurm stops the first allocation
# after its minute (and up to its next time check).
job_args=(--range 0:360 -- sh -c 'sleep 0.5; echo {}')
job=$(sbatch --parsable -N 2 --time=1 -o four-a.out -e four-a.err "$sbatch_script" "${job_args[@]}")
limited() { [ "$(sacct -n -X -j "$job" -o State 2>/dev/null | tr -d ' ')" = TIMEOUT ] || ! squeue -h -j "$job" 2>/dev/null | grep -q .; }
wait_for 150 limited || fail "the first allocation did not end: $(squeue)"
wait_for 60 no_drover_left || fail "drover processes left after the time limit: $(drover_left)"
[ -n "$(ls -d "$DROVER_SHARED_DIR"/state-* 2>/dev/null)" ] || fail "the job's state was not kept: $(cat four-a.err)"
done_first=$(wc -l <four-a.out)
sbatch --wait -N 2 -o four-b.out -e four-b.err "$sbatch_script" "${job_args[@]}" >/dev/null ||
    fail "the resubmission failed: $(cat four-b.err)"
[ "$(tr '\n' ' ' <four-b.out)" = "$(seq 0 359 | tr '\n' ' ')" ] || fail "not every result once: $(head four-b.out)"
grep -q "resume" four-a.err || fail "the first allocation did not say how to resume: $(cat four-a.err)"
[ "$(ls -A "$DROVER_SHARED_DIR")" = "$job.0" ] || fail "left behind after completion: $(ls -A "$DROVER_SHARED_DIR")"
echo "(the first allocation printed $done_first results before its limit; the second all 360)"

echo "== 5. workers that join a coordinator elsewhere, added and removed mid-job"
port_workers=$(free_port); port_clients=$(free_port)
first=$(sbatch --parsable -N 1 -o five-a.out "$root/deploy/slurm/drover-workers.sbatch" \
    --coordinator "tcp://127.0.0.1:$port_workers" --allow-root)
wait_for 60 running worker 1 || fail "workers did not start: $(cat five-a.out)"
# The worker is up before the coordinator: it waits and retries.
"$DROVER_BIN_DIR/drover-coordinator" --listen-workers "tcp://127.0.0.1:$port_workers" \
    --listen-clients "127.0.0.1:$port_clients" --heartbeat 0.2 --worker-timeout 2 2>coordinator.log &
coordinator_pid=$!
drover() { "$DROVER_BIN_DIR/drover" --coordinator "127.0.0.1:$port_clients" "$@"; }
registered() { [ "$(drover workers 2>/dev/null | tail -n +2 | wc -l)" -ge "$1" ]; }
wait_for 30 registered 1 || fail "the early worker did not join: $(cat five-a.out coordinator.log)"
drover workers | grep -q "slurm_job=$first" || fail "no slurm_job label: $(drover workers)"
# No --retries: a task stopped with its worker is not a failure.
job=$(drover submit --range 0:8 -- sh -c 'sleep 3; echo {}')
wait_for 30 tasks_of_first_running || fail "no task started on the first allocation"
second=$(sbatch --parsable -N 1 -o five-b.out "$root/deploy/slurm/drover-workers.sbatch" \
    --coordinator "tcp://127.0.0.1:$port_workers" --allow-root)
wait_for 60 registered 2 || fail "the added worker did not join: $(cat five-b.out)"
scancel "$first"
drover wait --quiet "$job" || fail "the job did not complete after a node left: $(drover --json results "$job")"
[ "$(drover results "$job" | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 " ] || fail "wrong results: $(drover results "$job")"
scancel "$second"
kill -TERM "$coordinator_pid"; wait "$coordinator_pid" || true; coordinator_pid=""
wait_for 60 no_drover_left || fail "drover processes left: $(drover_left)"

echo "== 6. nothing of the test left"
slurm_cluster_stop "$work"
wait_for 30 no_stepd_left || fail "slurmstepd left: $(stepd_left)"
echo "PASS"
