# A real Slurm cluster of two nodes on this machine, for tests (sourced by
# slurm_test.sh): Debian's munged, slurmctld and two slurmd (-N n1, -N n2), all
# with NodeAddr 127.0.0.1 and a port each, configured and logged under $1 and
# stopped by their pid files (and leftover slurmstepd by their working
# directory). No systemd involved. Needs root and test_lib.sh.
#   slurm_cluster_start DIR   (exports SLURM_CONF; waits until both nodes are idle)
#   slurm_cluster_stop DIR

slurm_cluster_start() {
  local dir=$1
  mkdir -p "$dir/state" "$dir/spool/n1" "$dir/spool/n2" "$dir/munge"
  chown munge:munge "$dir/munge"
  chmod 0755 "$dir/munge"
  runuser -u munge -- munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
      --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
  local ctld_port n1_port n2_port
  ctld_port=$(free_port); n1_port=$(free_port); n2_port=$(free_port)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=drovertest
SlurmctldHost=$(hostname)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
KillWait=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
NodeName=n1 NodeAddr=127.0.0.1 Port=$n1_port CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 Port=$n2_port CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -i
  slurmd -N n1
  slurmd -N n2
  for _ in $(seq 150); do
    [ "$(sinfo -h -o '%T' 2>/dev/null | sort -u)" = "idle" ] && return 0
    sleep 0.2
  done
  echo "slurm cluster did not come up:" >&2
  sinfo >&2 || true
  tail -20 "$dir/slurmctld.log" "$dir"/slurmd-*.log >&2 || true
  return 1
}

slurm_cluster_stop() {
  local dir=$1 pidfile
  scancel --user="$(id -un)" 2>/dev/null || true
  for pidfile in "$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -s "$pidfile" ] && kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
  done
  for pidfile in "$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    for _ in $(seq 50); do
      [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.1
    done
  done
  # A job step's slurmstepd can outlive slurmd (and ignores SIGTERM): end
  # those of this cluster (their working directory is under $dir).
  local pid
  for pid in $(pgrep -x slurmstepd); do
    case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in "$dir"*) kill -KILL "$pid" 2>/dev/null || true;; esac
  done
}
