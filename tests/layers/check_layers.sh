#!/usr/bin/env bash
# check_layers.sh BUILD_DIR - the library's files call only downward: reads which file defines
# and which file uses each global symbol (nm on the object files of libmproc and
# libmproc_mpi) and fails on any call from a file to one at its own level or above it. The
# levels are the ones docs/architecture.md draws; a callback through an ops table makes no
# symbol reference, which is how a lower layer reaches back.
set -u
build=${1:?usage: check_layers.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../../src" && pwd)
objs=$(find "$build/src/CMakeFiles" -name '*.c.o' \( -path '*/mproc.dir/*' -o -path '*/mproc_mpi.dir/*' \) | sort)
[ -n "$objs" ] || { echo "check_layers: no object files under $build/src/CMakeFiles"; exit 1; }

# level FILE: the file's place, bottom (0) to top. Files on one level must not call each other.
level() {
    case $1 in
    common/errors.c | common/numbers.c) echo 0 ;;
    common/clock.c) echo 1 ;;
    common/registry.c) echo 2 ;;
    common/runtime.c) echo 3 ;;
    shared/primitives.c | shared/remote.c) echo 4 ;;
    shared/arena.c) echo 5 ;;
    shared/locks.c | shared/queue.c | shared/named_memory.c) echo 6 ;;
    shared/events.c | shared/pipe.c | shared/array.c) echo 7 ;;
    shared/broker.c) echo 8 ;;
    wire/wire.c) echo 10 ;;
    wire/stream_reader.c) echo 11 ;;
    worker/*) echo 20 ;;
    backends/spawn.c | backends/frame_ring.c) echo 30 ;;
    backends/frame_mailbox.c) echo 29 ;;
    backends/none.c | backends/socket_worker.c) echo 31 ;;
    backends/mpi_loader.c) echo 32 ;;
    backends/fork/processes.c | backends/fork/workers.c) echo 33 ;;
    backends/fork/receive.c) echo 34 ;;
    backends/fork/backend.c) echo 35 ;;
    backends/mpi/fork_server.c | backends/mpi/init_watch.c) echo 39 ;;
    backends/mpi/world.c) echo 40 ;;
    backends/mpi/wait.c) echo 41 ;;
    backends/mpi/net_watch.c | backends/mpi/sends_in_flight.c) echo 42 ;;
    backends/mpi/transport.c | backends/mpi/exec_rings.c) echo 43 ;;
    backends/mpi/exec_spawn.c) echo 44 ;;
    backends/mpi/routing.c | backends/mpi/exec_state.c) echo 45 ;;
    backends/mpi/exec_give.c | backends/mpi/exec_replies.c) echo 46 ;;
    backends/mpi/executor.c) echo 47 ;;
    backends/mpi/watchdog.c | backends/mpi/rank_children.c | backends/mpi/canary.c) echo 48 ;;
    backends/mpi/groups.c | backends/mpi/processes.c | backends/mpi/rank.c) echo 49 ;;
    backends/mpi/master.c) echo 50 ;;
    backends/table.c) echo 51 ;;
    pool/backend_calls.c) echo 60 ;;
    pool/queue.c) echo 61 ;;
    pool/batch.c | pool/progress.c | pool/waitset.c | pool/journal.c | pool/domains.c) echo 62 ;;
    pool/faults.c) echo 63 ;;
    pool/scheduler.c | pool/cancel.c) echo 64 ;;
    pool/job.c | pool/iter_journal.c) echo 65 ;;
    pool/async.c | pool/iter.c) echo 66 ;;
    pool/lifecycle.c | pool/handle.c) echo 67 ;;
    process.c) echo 70 ;;
    init.c) echo 80 ;;
    *) echo unknown ;;
    esac
}

name_of() { # object path -> source path relative to src/
    local o=${1#*/src/CMakeFiles/}
    o=${o#*.dir/}
    echo "${o%.o}"
}

declare -A def lvl
live=""
for o in $objs; do # objects of files since renamed or removed are not the library's
    [ -f "$src/$(name_of "$o")" ] && live="$live $o"
done
objs=$live
for o in $objs; do
    f=$(name_of "$o")
    l=$(level "$f")
    if [ "$l" = unknown ]; then echo "check_layers: $f has no level: add it to $0 and docs/architecture.md"; exit 1; fi
    lvl[$f]=$l
    while read -r sym; do def[$sym]=$f; done < <(nm -g --defined-only "$o" | awk '$2 ~ /[TDBRV]/ {print $3}')
done

bad=0 edges=0
for o in $objs; do
    f=$(name_of "$o")
    while read -r sym; do
        g=${def[$sym]:-}
        [ -n "$g" ] && [ "$g" != "$f" ] || continue
        edges=$((edges + 1))
        if [ "${lvl[$f]}" -le "${lvl[$g]}" ]; then
            echo "layer violation: $f (level ${lvl[$f]}) calls $sym in $g (level ${lvl[$g]})"
            bad=$((bad + 1))
        fi
    done < <(nm -u "$o" | awk '{print $2}')
done
echo "check_layers: $(echo $objs | wc -w) files, $edges calls between them, $bad upward or sideways"
[ $bad -eq 0 ]
