#!/usr/bin/env bash
# shared_nodes.sh - what a shared object costs from another node, through the master's broker,
# on a 3-host cluster simulated with network namespaces (tests/cluster/cluster.sh; one rank per
# host, TCP only): bench/shared_bench with the master on h0 and its Process on another host
# (every call a round trip to the broker), next to the same with the 3 ranks on h0 (the Process
# in shared memory with the master) and the plain MPI ping-pong across the hosts
# (bench/peers/c_mpi_floor rtt, with the TCP settings bench/cluster.sh gives it), in the same
# minutes. Workloads: queue (a put per item from the other node), qrtt (a round trip through
# two queues: a get and a put there), lockc (both contend for one Lock; there every pair is
# acquire, read, write, release: four calls).
#
#   bench/shared_nodes.sh [--reps N]        (needs root and iproute2, as the cluster tests)
#
# Writes bench/results/shared_nodes.md (BENCH_OUT overrides) and prints it.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${BENCH_OUT:-$root/bench/results}
build=${MPROC_BUILD_DIR:-$root/build-bench}

if [ -n "${MPROC_CLUSTER_MPIRUN:-}" ]; then # inside the cluster, on h0
    reps=$1 raw=$2
    SB=$build/bench/shared_bench FL=$build/bench-peers/c_mpi_floor
    one=(mpirun --allow-run-as-root --oversubscribe -np 3 --mca btl tcp,self)
    export OMPI_MCA_btl_tcp_eager_limit=1052672 OMPI_MCA_btl_tcp_max_send_size=1052672
    for r in $(seq 1 "$reps"); do
        for wl in "queue 20000" "qrtt 5000" "lockc 3000" "mpirtt 5000"; do
            for cfg in $(printf '%s\n' nodes one | shuf); do
                set -- $wl
                if [ "$1" = mpirtt ]; then
                    prog=("$FL" rtt "$2")
                else prog=("$SB" "$1" "$2"); fi
                case $cfg in
                nodes) cmd=("$MPROC_CLUSTER_MPIRUN" -np 3 "${prog[@]}") ;;
                one) cmd=("${one[@]}" "${prog[@]}") ;;
                esac
                line=$(timeout 300 "${cmd[@]}" </dev/null 2>/dev/null | grep '^RESULT' | head -1)
                echo "${line:-# FAIL} cfg=$cfg wl=$1 rep=$r" >>"$raw"
            done
        done
    done
    exit 0
fi

reps=3
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build" -j "$(nproc)" --target shared_bench >/dev/null &&
    sh "$here/peers/build.sh" "$build/bench-peers" >/dev/null || { echo "shared_nodes.sh: build failed" >&2; exit 1; }
raw=$out/shared_nodes_raw.txt
echo "# bench/shared_nodes.sh $(date -Is) reps=$reps git=$(git -C "$root" rev-parse --short HEAD)" >"$raw"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$root/tests/cluster/cluster.sh" 3 "$0" "$reps" "$raw" || { echo "shared_nodes.sh: the cluster run failed" >&2; exit 1; }
awk '
/^RESULT/ && / check=ok/ {
    v = ""; c = ""; w = ""; un = ""
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "value") v = kv[2]; if (kv[1] == "cfg") c = kv[2]; if (kv[1] == "wl") w = kv[2]; if (kv[1] == "unit") un = kv[2] }
    u[w] = un
    key = w SUBSEP c; n[key]++; val[key, n[key]] = v + 0
}
function med(key,   m, i, j, t, a) {
    m = n[key]; if (!m) return -1
    for (i = 1; i <= m; i++) a[i] = val[key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function show(x) { return x < 0 ? "n/a" : sprintf(x >= 1000 ? "%.0f" : "%.3g", x) }
END {
    print "| workload | unit | the Process on another node (broker) | on the master'"'"'s node | another node / MPI ping-pong across the nodes |"
    print "|---|---|---:|---:|---:|"
    p = med("mpirtt" SUBSEP "nodes")
    split("queue qrtt lockc", ws, " ")
    for (k = 1; k <= 3; k++) { w = ws[k]; a = med(w SUBSEP "nodes"); b = med(w SUBSEP "one")
        if (w == "queue") r = (a > 0 && p > 0) ? sprintf("%.2fx", (1e6 / a) / p) : "-"        # us per item / us per ping-pong
        else if (w == "qrtt") r = (a > 0 && p > 0) ? sprintf("%.2fx", a / p) : "-"
        else r = (a > 0 && p > 0) ? sprintf("%.2fx", (a / 1000) / p) : "-"   # both processes together
        printf "| %s | %s | %s | %s | %s |\n", w, u[w], show(a), show(b), r
    }
    printf "| MPI ping-pong (c_mpi_floor rtt) | us | %s | %s | |\n", show(p), show(med("mpirtt" SUBSEP "one"))
}' "$raw" >"$out/shared_nodes.md"
{ echo; echo "Medians of $reps run(s), 3 simulated hosts on $(nproc) cores, $(date -u +%Y-%m-%d); raw lines in shared_nodes_raw.txt."
  echo "The last column: one operation's time from the other node as a multiple of one MPI round trip between the nodes."; } >>"$out/shared_nodes.md"
cat "$out/shared_nodes.md"
