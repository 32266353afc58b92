#!/usr/bin/env bash
# A co-evolution job of N processes on this machine, started the way a scheduler starts one process per host:
# every process runs the same command with JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set
# (ptjax.distributed). `ptjax launch` does the same with output prefixed by process; this script shows the bare
# mechanism.
#
#   examples/launch_local.sh 2 configs/smoke.py runs/two_processes [--resume]
set -euo pipefail
n=${1:?number of processes}; config=${2:?config file}; workdir=${3:?workdir}; shift 3
port=${PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}
cores=$(nproc)
export JAX_COORDINATOR_ADDRESS="localhost:${port}" JAX_NUM_PROCESSES="$n"
export PTJAX_CPU_DEVICES=${PTJAX_CPU_DEVICES:-$(( cores / n > 0 ? cores / n : 1 ))}  # CPU devices per process
pids=()
for ((i = 0; i < n; i++)); do
  JAX_PROCESS_ID=$i ptjax coevolve --config "$config" --workdir "$workdir" "$@" > "${workdir%/}.process_$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
echo "logs: ${workdir%/}.process_*.log; results (written by process 0): $workdir"
exit "$status"
