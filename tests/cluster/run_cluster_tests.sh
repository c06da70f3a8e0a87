#!/usr/bin/env bash
# run_cluster_tests.sh BUILD_DIR - mproc across nodes, on clusters simulated with network
# namespaces (cluster.sh): 3 hosts with one rank each (the master on h0, a worker on each other
# host), then 4 hosts with 4 ranks each. Checks that the ranks really are on different nodes,
# that the jobs give their one-node results, that the pool, process and fault suites pass, that a
# rank killed mid-map is survived, and that (without executors) a crashing task and a task-table
# mismatch end the job as documented. Prints "N passed, N
# failed"; exits 77 (why on stderr) where namespaces cannot be made.
set -u
build=$(cd "${1:?usage: run_cluster_tests.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tests=$here/..
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
unset MPROC_BACKEND

# Inside the cluster (runs on h0): the checks, one line each.
if [ "${MPROC_CLUSTER_MPIRUN:-}" ]; then
    run=$MPROC_CLUSTER_MPIRUN np=$2 pass=0 fail=0
    nhosts=$(echo $MPROC_CLUSTER_HOSTS | wc -w)
    check() { # name command...
        local name=$1; shift
        local log; log=$(mktemp)
        local rc=0
        if declare -F "$1" >/dev/null; then "$@" >"$log" 2>&1 || rc=$?; else timeout 600 "$@" >"$log" 2>&1 || rc=$?; fi
        if [ $rc -eq 0 ]; then pass=$((pass + 1)); echo "ok - $name"
        else fail=$((fail + 1)); echo "not ok - $name"; tail -40 "$log"; fi
        rm -f "$log"
    }
    nodes() { # every rank on its own host when np == hosts; ranks per host otherwise
        local out; out=$(timeout 120 "$run" -np "$np" "$build/tests/cluster_nodes") || return 1
        echo "$out"
        local hosts per; hosts=$(awk '{print $4}' <<<"$out" | sort -u | wc -l)
        per=$(( (np + nhosts - 1) / nhosts ))
        [ "$hosts" -eq $(( np < nhosts ? np : nhosts )) ] || { echo "ranks on $hosts hosts"; return 1; }
        awk -v per="$per" '$6 > per { bad = 1 } END { exit bad }' <<<"$out" || { echo "more than $per ranks share a node"; return 1; }
        [ "$(awk '$2 == 0 {print $4}' <<<"$out")" = h0 ] || { echo "rank 0 is not on h0"; return 1; }
    }
    workers() { # mproc's own view: the master on h0, workers on every other host
        local out; out=$(timeout 120 "$run" -np "$np" "$build/tests/cluster_hosts") || return 1
        echo "$out"
        local want; want=$(for h in $MPROC_CLUSTER_HOSTS; do echo "$h"; done | if [ "$np" -le "$nhosts" ]; then sed 1d; else cat; fi | head -n $((np - 1)) | sort | tr '\n' ' ')
        [ "$(sed -n 1p <<<"$out")" = "master h0" ] || return 1
        [ "$(sed -n 2p <<<"$out" | sed 's/^workers //') " = "$want" ] || { echo "want workers: $want"; return 1; }
    }
    check "ranks on distinct nodes (np $np on $nhosts hosts)" nodes
    check "mproc workers on the other hosts (np $np)" workers
    check "test_pool across nodes (np $np)" "$run" -np "$np" "$build/tests/test_pool"
    check "test_process across nodes (np $np)" "$run" -np "$np" "$build/tests/test_process"
    check "test_faults across nodes: crashes, time limits, terminate cost a task (np $np)" "$run" -np "$np" "$build/tests/test_faults"
    check "shared objects from every node through the master's broker (np $np)" "$run" -np "$np" "$build/tests/cluster_shared"
    check "shared objects without the broker: MPROC_EREMOTE off the master's node (np $np)" "$run" -np "$np" "$build/tests/cluster_shared" nobroker
    check "shared objects, the broker's address given (MPROC_SHARED_BROKER_ADDR) (np $np)" "$run" -np "$np" "$build/tests/cluster_shared" addr
    check "shared objects, a bad MPROC_SHARED_BROKER_ADDR: mproc_init refuses it on every rank (np $np)" "$run" -np "$np" "$build/tests/cluster_shared" badaddr
    check "test_shared across nodes: Queue, Lock, Event, Barrier, Pipe, deaths (np $np)" "$run" -np "$np" -x MPROC_TEST_CLUSTER=1 "$build/tests/test_shared"
    if [ "$np" -le 4 ]; then
        check "seed jobs and primes give their one-node results" "$tests/check_jobs.sh" "$build/jobs" cluster
        check "without executors a crashing task ends the job, rank and task named" "$tests/mpi_rank_crash.sh" "$run" "$build/tests/mpi_rank_crash" 3
        check "a rank killed on its node mid-map is survived (--enable-recovery)" "$tests/mpi_lost_rank.sh" "$run" "$build/tests/mpi_lost_rank"
        check "a task-table mismatch ends the job, rank named" "$tests/mpi_registry_mismatch.sh" "$run" \
            "$build/tests/mpi_registry_a" "$build/tests/mpi_registry_b"
    fi
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi

total_pass=0 total_fail=0 rc_all=0
for layout in "3 3" "4 16"; do
    set -- $layout
    echo "=== $1 hosts, $2 ranks"
    log=$(mktemp)
    "$here/cluster.sh" "$1" "$0" "$build" "$2" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 77 ] && { rm -f "$log"; exit 77; }
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -n "$line" ]; then
        total_pass=$((total_pass + ${line%% *}))
        f=${line#*, }; total_fail=$((total_fail + ${f%% *}))
    else
        total_fail=$((total_fail + 1))
    fi
    [ "$rc" -eq 0 ] || rc_all=1
    rm -f "$log"
done
echo "cluster: $total_pass passed, $total_fail failed"
exit $rc_all
