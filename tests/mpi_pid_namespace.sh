#!/usr/bin/env bash
# mpi_pid_namespace.sh MPIEXEC PROGRAM - worker ranks in pid namespaces of their own, on the
# master's host name (containers on one machine): a rank must not take the master's pid, which
# names another process (or none) in its namespace, for the master's, and end itself as if the
# master were gone. The ranks talk over TCP (no shared memory across the namespaces). Exit 77
# (skipped, saying why) where pid namespaces cannot be made.
set -u
mpiexec=${1:?usage: mpi_pid_namespace.sh MPIEXEC PROGRAM}
prog=${2:?usage: mpi_pid_namespace.sh MPIEXEC PROGRAM}
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
    echo "mpi_pid_namespace: cannot make pid namespaces here (unshare --pid needs CAP_SYS_ADMIN): skipped"
    exit 77
fi
wrap=$(mktemp /tmp/mproc-pidns-XXXXXX.sh)
trap 'rm -f "$wrap"' EXIT
cat >"$wrap" <<'WRAP'
#!/usr/bin/env bash
if [ "${OMPI_COMM_WORLD_RANK:-0}" != 0 ]; then exec unshare --pid --fork --mount-proc "$@"; fi
exec "$@"
WRAP
chmod +x "$wrap"
out=$(timeout 240 "$mpiexec" -np 3 --oversubscribe --mca btl tcp,self "$wrap" "$prog" 2>&1)
rc=$?
echo "$out" | tail -20
if grep -q 'is gone; this rank ends' <<<"$out"; then
    echo "mpi_pid_namespace: a rank in its own pid namespace took the master for gone"
    exit 1
fi
[ $rc = 0 ] || { echo "mpi_pid_namespace: the job ended $rc"; exit 1; }
echo "mpi_pid_namespace: ok"
