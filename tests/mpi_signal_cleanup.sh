#!/bin/bash
# mpi_signal_cleanup.sh MPIEXEC FAULT_MASTER - under MPI, a job ended from outside leaves nothing
# behind (README's fault table: "mpirun forwards the signal and ends every rank; executors and
# fork servers die with their rank"; "the master is SIGKILLed: mpirun ends the job"). For each
# way to end it - SIGTERM or SIGINT to mpirun, SIGKILL to the master rank, SIGKILL to a worker
# rank - fault_master runs a 25 s map on 2 worker ranks; once its executors have answered, the
# script notes every process under mpirun (master, ranks, fork servers, executors), ends the job,
# and checks that mpirun exits within 20 s and that every one of those processes is gone (or a
# zombie waiting for init) within 10 s more.
set -u
mpiexec=$1 prog=$2
work=$(mktemp -d)
job=
cleanup() {
    [ -n "$job" ] && kill -KILL "$job" 2>/dev/null
    for p in $(cat "$work"/tree 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# Every descendant of $1, one pid per line.
descendants() {
    local kids
    kids=$(ps -o pid= --ppid "$1" 2>/dev/null)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

# 1 when pid $1 is gone or a zombie.
gone() {
    [ -e "/proc/$1" ] || return 0
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

fail=0
run_case() { # name, then how to end the job: "mpirun SIG" or "rank R SIG"
    local name=$1 target=$2 rank=$3 sig=$4
    : >"$work/out"
    "$mpiexec" -np 3 --oversubscribe "$prog" >"$work/out" 2>"$work/err" &
    job=$!
    for _ in $(seq 600); do
        grep -q '^workers ' "$work/out" && break
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^workers ' "$work/out"; then
        echo "FAIL $name: the job did not start"; cat "$work/err"; fail=1; return
    fi
    read -r _ e1 e2 <"$work/out"
    descendants "$job" >"$work/tree"
    for e in $e1 $e2; do
        grep -qx "$e" "$work/tree" || { echo "FAIL $name: executor $e is not under mpirun"; fail=1; }
    done
    local victim=$job
    if [ "$target" = rank ]; then # ranks: mpirun's children running the program, in rank order
        victim=$(for p in $(ps -o pid= --ppid "$job"); do
            r=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
            [ "$r" = "$rank" ] && echo "$p"
        done | head -1)
        [ -n "$victim" ] || { echo "FAIL $name: no rank $rank under mpirun"; fail=1; return; }
    fi
    kill -"$sig" "$victim"
    local t0=$SECONDS
    while kill -0 "$job" 2>/dev/null && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.2; done
    if kill -0 "$job" 2>/dev/null; then
        echo "FAIL $name: mpirun still runs 20 s after SIG$sig to $target $rank"; fail=1
    fi
    wait "$job" 2>/dev/null
    job=
    local left=""
    for _ in $(seq 100); do
        left=""
        for p in $(cat "$work/tree"); do gone "$p" || left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    if [ -n "$left" ]; then
        echo "FAIL $name: left behind:"; for p in $left; do ps -o pid=,ppid=,stat=,args= -p "$p"; done; fail=1
    else
        echo "ok $name: $(wc -l <"$work/tree") processes, all gone in $((SECONDS - t0)) s"
    fi
}

run_case "SIGTERM to mpirun" mpirun - TERM
run_case "SIGINT (Ctrl-C) to mpirun" mpirun - INT
run_case "SIGKILL to the master rank" rank 0 KILL
run_case "SIGKILL to a worker rank" rank 1 KILL
exit $fail
