#!/usr/bin/env bash
# cluster.sh: a single-node Slurm cluster (munged, slurmctld, slurmd from
# Debian's packages) in one directory, for tests and for trying the batch
# scripts on a workstation. Needs root; no systemd.
#
#   tools/slurm/cluster.sh install     install the packages if missing
#   tools/slurm/cluster.sh up DIR      start the daemons; config, state, logs
#                                      and pid files go under DIR
#   tools/slurm/cluster.sh down DIR    cancel jobs, stop what `up DIR` started
#                                      (by the PIDs it recorded, never by name)
#
# After `up`, point the clients at it: export SLURM_CONF=DIR/slurm.conf
# Environment: COHORT_SLURM_CPUS (CPUs the node advertises, default 8; more
# than the machine has is allowed), COHORT_SLURM_GPUS (fake gres/gpu devices,
# default 4), COHORT_SLURM_CRED_EXPIRE (seconds, default 10: with it a
# requeued job restarts after about 12 s instead of 2.5 min),
# COHORT_SLURM_KILL_WAIT (SIGTERM to SIGKILL, default 10),
# COHORT_SLURM_PORT (slurmctld port, default 6817; slurmd uses the next).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

usage() {
	sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

# True when pid file $1 names a live process whose command is $2.
alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	[ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] &&
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# Poll command "$@" for up to $1 seconds.
wait_until() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

munge_works() { munge -n </dev/null | unmunge >/dev/null; }
controller_up() { scontrol ping | grep -q 'is UP'; }
node_idle() { [ "$(sinfo -h -N -o %T 2>/dev/null | head -1)" = idle ]; }

# Install the Slurm and munge packages that are missing (one list, in
# tools/install-deps.sh).
install_packages() {
	bash "$here/../install-deps.sh" slurm >&2 || die "could not install Slurm (above)"
}

# Start munged unless one already answers (then it is not ours to stop).
start_munge() {
	local dir=$1
	if munge_works 2>/dev/null; then
		return 0
	fi
	if [ ! -s /etc/munge/munge.key ]; then
		install -d -o munge -g munge -m 0700 /etc/munge
		mungekey --create --keyfile=/etc/munge/munge.key
	fi
	chown munge:munge /etc/munge/munge.key
	chmod 0600 /etc/munge/munge.key
	install -d -o munge -g munge -m 0755 /run/munge
	install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
	# setpriv execs munged in place, so $! is munged's own pid.
	setsid setpriv --reuid=munge --regid=munge --init-groups \
		/usr/sbin/munged --foreground </dev/null >>"$dir/log/munged.out" 2>&1 &
	echo $! >"$dir/pids/munged.pid"
	wait_until 10 munge_works || die "munged did not start (log: $dir/log/munged.out)"
}

# Write slurm.conf (and gres.conf with fake GPUs) for this machine.
write_config() {
	local dir=$1 host cpus gpus mem port gres="" types=""
	host=$(hostname -s)
	cpus=${COHORT_SLURM_CPUS:-8}
	gpus=${COHORT_SLURM_GPUS:-4}
	port=${COHORT_SLURM_PORT:-6817}
	mem=$(awk '/^MemTotal:/ {print int($2 / 1024 / 2)}' /proc/meminfo)
	rm -f "$dir/gres.conf"
	if [ "$gpus" -gt 0 ]; then
		# gres/gpu wants device files; clones of /dev/null (char 1,3) do.
		mkdir -p "$dir/dev"
		for ((i = 0; i < gpus; i++)); do
			[ -c "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3
			echo "NodeName=$host Name=gpu File=$dir/dev/gpu$i" >>"$dir/gres.conf"
		done
		gres="Gres=gpu:$gpus"
		types="GresTypes=gpu"
	fi
	cat >"$dir/slurm.conf" <<CONF
# Written by tools/slurm/cluster.sh: a one-node test cluster.
ClusterName=cohort-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=${COHORT_SLURM_CRED_EXPIRE:-10}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=${COHORT_SLURM_KILL_WAIT:-10}
InactiveLimit=0
MinJobAge=3600
$types
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

# Bring the cluster up in $1.
up() {
	local dir=$1 d
	install_packages
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	export SLURM_CONF=$dir/slurm.conf
	if alive "$dir/pids/slurmctld.pid" slurmctld && alive "$dir/pids/slurmd.pid" slurmd; then
		echo "cluster.sh: already up in $dir"
		return 0
	fi
	mkdir -p "$dir"/{pids,run,log,state,spool}
	start_munge "$dir"
	write_config "$dir"
	setsid slurmctld -D -f "$dir/slurm.conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
	echo $! >"$dir/pids/slurmctld.pid"
	wait_until 30 controller_up || die "slurmctld did not answer (log: $dir/log/slurmctld.log)"
	# slurmd registers with the controller, so it starts once that is up.
	setsid slurmd -D -N "$(hostname -s)" -f "$dir/slurm.conf" </dev/null >>"$dir/log/slurmd.out" 2>&1 &
	echo $! >"$dir/pids/slurmd.pid"
	if ! wait_until 60 node_idle; then
		sinfo -R >&2 || true
		die "the node did not become idle (logs: $dir/log/)"
	fi
	for d in slurmctld slurmd; do
		alive "$dir/pids/$d.pid" $d || die "$d exited (log: $dir/log/$d.log)"
	done
	echo "cluster.sh: up in $dir; export SLURM_CONF=$dir/slurm.conf"
}

# Stop the daemon whose pid file is $1/pids/$2.pid.
stop_daemon() {
	local file=$1/pids/$2.pid pid
	[ -s "$file" ] || return 0
	pid=$(cat "$file")
	if alive "$file" "$2"; then
		kill -TERM "$pid"
		wait_until 20 eval "! alive $file $2" || kill -KILL "$pid"
	fi
	rm -f "$file"
}

# Cancel every job, then stop the daemons `up` started in $1.
down() {
	local dir=$1 jobs
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd)
	export SLURM_CONF=$dir/slurm.conf
	if alive "$dir/pids/slurmctld.pid" slurmctld; then
		jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
		if [ -n "$jobs" ]; then
			# shellcheck disable=SC2086 # one argument per job id
			scancel $jobs 2>/dev/null || true
			wait_until 30 test -z "$(squeue -h -o %A 2>/dev/null)" || true
		fi
	fi
	stop_daemon "$dir" slurmd
	stop_daemon "$dir" slurmctld
	stop_daemon "$dir" munged
}

case "${1:-}" in
install) install_packages ;;
up) up "${2:?usage: cluster.sh up DIR}" ;;
down) down "${2:?usage: cluster.sh down DIR}" ;;
-h | --help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
