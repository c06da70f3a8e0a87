#!/bin/bash
# mpi_mca_defaults.sh MPIEXEC PROGRAM - mproc raises Open MPI's TCP eager limit and maximum send
# size to a packed frame (1052672 bytes) and turns mpi_yield_when_idle off, but a value the user
# set (OMPI_MCA_* in the environment) is left alone: as the README promises.
set -u
mpiexec=$1 prog=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fails=0
expect() { # NAME VALUE
    grep -qx "$1=$2" "$out" || { echo "FAIL ($run): want $1=$2, got: $(tr '\n' ' ' <"$out")"; fails=$((fails + 1)); }
}
run="mproc's defaults"
env -u OMPI_MCA_btl_tcp_eager_limit -u OMPI_MCA_btl_tcp_max_send_size -u OMPI_MCA_mpi_yield_when_idle \
    timeout 60 "$mpiexec" --oversubscribe -np 2 --mca btl tcp,self "$prog" >"$out" || { echo "FAIL: $run: exit $?"; exit 1; }
expect btl_tcp_eager_limit 1052672
expect btl_tcp_max_send_size 1052672
expect mpi_yield_when_idle 0
run="the user's own values"
env OMPI_MCA_btl_tcp_eager_limit=131072 OMPI_MCA_btl_tcp_max_send_size=262144 OMPI_MCA_mpi_yield_when_idle=1 \
    timeout 60 "$mpiexec" --oversubscribe -np 2 --mca btl tcp,self "$prog" >"$out" || { echo "FAIL: $run: exit $?"; exit 1; }
expect btl_tcp_eager_limit 131072
expect btl_tcp_max_send_size 262144
expect mpi_yield_when_idle 1
[ $fails = 0 ] || exit 1
echo "ok: mproc's MCA defaults apply only where the user set nothing"
