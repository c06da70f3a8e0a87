#!/usr/bin/env bash
# mpirun.sh - the one way to launch an mproc program on MPI ranks (rank 0 is the pool master,
# every other rank a worker). It builds mproc first when needed, picks a sensible rank count,
# adds the Open MPI flags a workstation needs, and falls back to local fork workers when MPI is
# not installed. Run `./mpirun.sh --help` for the details.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${MPROC_BUILD_DIR:-$here/build}
launcher=${MPROC_MPIRUN:-mpirun}
cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

usage() {
    cat <<EOF
usage: ./mpirun.sh [-np N] [mpirun options...] [--] PROGRAM [ARGS...]

Runs PROGRAM (an mproc program) on N MPI ranks: rank 0 runs your main() as the pool master,
ranks 1..N-1 are the pool's workers (mproc_init() never returns on them).

Rank count (-np N, also -n N, --np N, -np=N):
  inside a Slurm allocation (SLURM_NTASKS set)  default N = \$SLURM_NTASKS
  otherwise                                      default N = cores + 1 = $((cores + 1)) here:
                                                 one worker per core plus the master, which
                                                 sleeps while its workers compute
  -np 1 has no worker ranks: mproc then uses local fork workers.

What it adds for you:
  --allow-run-as-root   when run as root (Open MPI refuses root otherwise)
  --oversubscribe       when N is more than the cores here ($cores), or more than
                        \$SLURM_NTASKS inside Slurm (Open MPI refuses otherwise)
  -x MPROC_...          every MPROC_* variable you set, so ranks on other nodes see it too

Other mpirun options before PROGRAM go to mpirun unchanged, e.g.
  ./mpirun.sh -np 8 --mca btl tcp,self build/jobs/primes     (TCP only, as across nodes)
  ./mpirun.sh --hostfile hosts -np 16 build/jobs/primes
Options that take a value (--mca K V, -x V, --host V, --map-by V, ...) and the usual ones
that take none (--enable-recovery, --tag-output, --report-bindings, ...) are recognised; for
any other option, put -- before PROGRAM (./mpirun.sh --some-opt V -- PROGRAM ARGS...).

Building: when PROGRAM lies in the build directory, mproc is (re)built first if that
directory is missing or any file in src/ include/ jobs/ cmake/ or CMakeLists.txt is newer
than the last build (cmake -S . -B build && cmake --build build -j). Build output goes to
stderr.

Without MPI (no mpirun on PATH): it says how to install Open MPI
  (Debian/Ubuntu: sudo apt-get install openmpi-bin libopenmpi-dev)
and runs PROGRAM once, directly, on local fork workers (MPROC_BACKEND=fork).

Environment:
  MPROC_BUILD_DIR   build directory (default: build/ next to this script)
  MPROC_NO_BUILD=1  never build
  MPROC_MPIRUN      the launcher to use (default: mpirun)
  MPROC_MPI_START_TIMEOUT  seconds the master waits for every rank to reach mproc_init
                    (default 120; 0 = forever)
  MPROC_MPI_EXECUTORS  executor processes per worker rank, each a pool worker: a number,
                    auto (one per CPU the rank may use) or 0 (tasks run inside the rank; a
                    crash then ends the job). Default: the CPUs a rank may use shared among
                    the ranks on its node (1 with a rank per core). A pool may use fewer:
                    mproc_pool_opts.workers_per_rank
  MPROC_MPI_LOST_TIMEOUT  seconds a silent worker rank has to answer before it is taken as
                    lost (default 10; 0 = never); only matters under --enable-recovery

Two layouts (each gives every core a pool worker):
  a rank per core     ./mpirun.sh -np 17 --hostfile hosts PROGRAM      (one executor each)
  a rank per node     ./mpirun.sh -np 5 --hostfile hosts --map-by ppr:1:node --bind-to none PROGRAM
                      (each worker rank runs one executor per core of its node; the master's
                      fan-in is divided by the cores per node)
A worker rank that dies is survived (its tasks re-run elsewhere, the job ends 0 with a
warning) when Open MPI keeps the job: add --enable-recovery (mpirun then exits 0 whatever the
program returns; see docs/mpi.md).
EOF
}

die() {
    echo "mpirun.sh: $*" >&2
    exit 2
}

# --- arguments: ours, mpirun's, then the program and its own ----------------------------
np="" opts=() user_oversub=0 user_root=0
# A word right after an option we do not know: its value if a -- follows before anything
# that can only be the program's (a word after a word), so "--opt val -- PROGRAM" works as the
# usage says; otherwise it is PROGRAM (whose own arguments may hold a --).
separator_ahead() {
    local after_option=1 a
    for a; do
        case $a in
        --) return 0 ;;
        -*) after_option=1 ;;
        *) [ $after_option = 1 ] || return 1
            after_option=0 ;;
        esac
    done
    return 1
}
after_unknown=0
while [ $# -gt 0 ]; do
    value_of_unknown=$after_unknown after_unknown=0
    case $1 in
    -h | --help) usage; exit 0 ;;
    -np | -n | --np | --n)
        [ $# -ge 2 ] || die "$1 needs a number"
        np=$2; shift 2 ;;
    -np=* | -n=* | --np=* | --n=*) np=${1#*=}; shift ;;
    --) shift; break ;;
    --mca | -mca | --gmca | -gmca)
        [ $# -ge 3 ] || die "$1 needs a name and a value"
        opts+=("$1" "$2" "$3"); shift 3 ;;
    -x | --host | -host | -H | --hostfile | -hostfile | --machinefile | -machinefile | \
        --map-by | -map-by | --rank-by | -rank-by | --bind-to | -bind-to | --npernode | \
        -npernode | --npersocket | -npersocket | --wdir | -wdir | -wd | --output-filename | \
        -output-filename | --timeout | -timeout | --prefix | --rankfile | -rf | --am | -N | \
        --tune | --cpus-per-proc | --cpus-per-rank | --path | --preload-files | --stdin)
        [ $# -ge 2 ] || die "$1 needs a value"
        case $2 in *OVERSUBSCRIBE* | *oversubscribe*) user_oversub=1 ;; esac
        opts+=("$1" "$2"); shift 2 ;;
    --oversubscribe | -oversubscribe) user_oversub=1; opts+=("$1"); shift ;;
    --allow-run-as-root | -allow-run-as-root) user_root=1; opts+=("$1"); shift ;;
    --enable-recovery | -enable-recovery | --disable-recovery | -disable-recovery | \
        --tag-output | -tag-output | --timestamp-output | -timestamp-output | \
        --report-bindings | -report-bindings | --display-map | -display-map | \
        --display-allocation | -display-allocation | --display-devel-map | \
        --merge-stderr-to-stdout | --use-hwthread-cpus | -use-hwthread-cpus | --nolocal | \
        -nolocal | --nooversubscribe | -nooversubscribe | --pernode | -pernode | -q | --quiet | \
        -v | --verbose | --noprefix | --show-progress | --xml | -xml | --do-not-launch)
        opts+=("$1"); shift ;; # mpirun's options without a value
    -*) opts+=("$1"); shift; after_unknown=1 ;;
    *) [ $value_of_unknown = 1 ] && separator_ahead "$@" || break
        opts+=("$1"); shift ;;
    esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
prog=$1
shift

if [ -z "$np" ]; then
    if [ -n "${SLURM_NTASKS:-}" ]; then np=$SLURM_NTASKS; else np=$((cores + 1)); fi
fi
case $np in '' | *[!0-9]* | 0) die "the rank count must be a positive number, not '$np'" ;; esac

# --- build when the program is one of ours and the sources moved ------------------------
# The stamp records the last build this script made; without one, the program's own age.
needs_build() {
    [ -x "$prog" ] || return 0
    local ref=$build/.mproc_built
    [ -e "$ref" ] || ref=$prog
    local src
    src=$(find "$here/src" "$here/include" "$here/jobs" "$here/cmake" "$here/CMakeLists.txt" \
        -newer "$ref" -print -quit 2>/dev/null)
    [ -n "$src" ]
}

maybe_build() {
    [ "${MPROC_NO_BUILD:-0}" = 1 ] && return 0
    [ -f "$here/CMakeLists.txt" ] || return 0
    local abs_build abs_prog
    abs_build=$(realpath -m "$build") abs_prog=$(realpath -m "$prog")
    case $abs_prog in "$abs_build"/*) ;; *) return 0 ;; esac
    needs_build || return 0
    command -v cmake >/dev/null || die "cmake is needed to build mproc (apt-get install cmake)"
    mkdir -p "$build" || die "cannot create $build"
    # One build at a time: several launches may start together (a test suite, a job array).
    exec 9>"$build/.mproc_build.lock"
    command -v flock >/dev/null && flock -w 900 9
    if needs_build; then
        echo "mpirun.sh: building mproc in $build ..." >&2
        { cmake -S "$here" -B "$build" && cmake --build "$build" -j "$cores"; } >&2 ||
            die "the build failed (see above)"
        touch "$build/.mproc_built"
    fi
    exec 9>&-
}
maybe_build
[ -e "$prog" ] || command -v "$prog" >/dev/null || die "no such program: $prog"

# --- no MPI here: run once on local fork workers ----------------------------------------
if ! command -v "$launcher" >/dev/null; then
    cat >&2 <<EOF
mpirun.sh: '$launcher' not found: MPI is not installed, so $prog runs once on local fork
mpirun.sh: workers instead of $np MPI ranks. To run it on MPI ranks, install Open MPI:
mpirun.sh:     sudo apt-get install openmpi-bin libopenmpi-dev     (Debian, Ubuntu)
mpirun.sh:     sudo dnf install openmpi openmpi-devel              (Fedora, RHEL: then module load mpi)
mpirun.sh: and rebuild mproc (rm -rf $build; ./mpirun.sh ... rebuilds it).
EOF
    MPROC_BACKEND=fork exec "$prog" "$@"
fi

# --- the flags a workstation needs ------------------------------------------------------
extra=()
if [ "$(id -u)" = 0 ] && [ $user_root = 0 ]; then extra+=(--allow-run-as-root); fi
limit=$cores
[ -n "${SLURM_NTASKS:-}" ] && limit=$SLURM_NTASKS
if [ $user_oversub = 0 ] && { [ "$np" -gt "$limit" ] || [[ " $* " == *" : "* ]]; }; then
    extra+=(--oversubscribe)
fi
# Ranks on other nodes only see the variables named with -x.
for name in $(compgen -e); do
    case $name in MPROC_*) extra+=(-x "$name") ;; esac
done

exec "$launcher" "${extra[@]}" "${opts[@]}" -np "$np" "$prog" "$@"
