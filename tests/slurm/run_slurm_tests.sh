#!/bin/bash
# run_slurm_tests.sh BUILD_DIR - run jobs/*.sbatch on a real, private, single-node Slurm.
#
# Starts munged + slurmctld + slurmd in a temp dir (tests/slurm/slurm_env.sh), submits the
# repo's sbatch scripts from the source root with MPROC_BUILD_DIR=BUILD_DIR, polls
# `scontrol show job` (never sbatch --wait) and checks:
#   a) sbatch -n 4 jobs/primes.sbatch       COMPLETED, ExitCode=0:0, output has the primes count
#   b) sbatch jobs/pool_squares.sbatch      output has [1, 4, 9, 16, 25]
#   b2) sbatch jobs/wordcount.sbatch DIR    twice with its journal: both COMPLETED with wc's totals
#   c) srun --mpi=pmix inside an allocation pool_squares runs as one 4-rank MPI job
#                                           (falls back to mpirun in the allocation without pmix)
#   d) a job whose master exits non-zero    FAILED with a non-zero ExitCode
#   e) sbatch -n 64 (more than the node)    refused at submit time
# Prints "N passed, N failed"; exit 0 all passed, 1 a failure, 77 SKIPPED (Slurm not usable).
#
# Environment: MPROC_SLURM_JOB_TIMEOUT (s per job, default 120), MPROC_SLURM_TOTAL_TIMEOUT (s for
# the whole script, default 540), MPROC_SLURM_APT_TIMEOUT (s for the apt-get install fallback,
# default 300), SLURM_ENV_KEEP=1 keeps the temp dir,
# MPROC_SOURCE_DIR (default: this script's ../..) is the tree holding jobs/ and mpirun.sh.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=${MPROC_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
JOB_TIMEOUT=${MPROC_SLURM_JOB_TIMEOUT:-120}
APT_TIMEOUT=${MPROC_SLURM_APT_TIMEOUT:-300}
# Stay inside ctest's TIMEOUT 600 (ctest SIGKILLs, and then no trap runs): every job wait also
# ends by this many seconds after the script started.
TOTAL_TIMEOUT=${MPROC_SLURM_TOTAL_TIMEOUT:-540}
EXPECT_PRIMES='primes below 10000000: 664579'
EXPECT_SQUARES='[1, 4, 9, 16, 25]'

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || {
    echo "run_slurm_tests: build dir '$1' does not exist" >&2
    exit 2
}

skip() {
    echo "SKIPPED: $*"
    exit 77
}

# --- prerequisites -----------------------------------------------------------------------------
# Keep a surrounding Slurm job or site defaults from steering our clients.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM_|SBATCH_|SALLOC_|SRUN_)' | grep -v '^SLURM_ENV_')

tools=(munged slurmctld slurmd sbatch srun scontrol sinfo squeue scancel)
missing_tools() {
    local t out=()
    for t in "${tools[@]}"; do
        command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || out+=("$t")
    done
    echo "${out[*]}"
}
export PATH=$PATH:/usr/sbin:/sbin
missing=$(missing_tools)
if [[ -n $missing ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "run_slurm_tests: missing [$missing]; trying apt-get install -y slurm-wlm munge (<= ${APT_TIMEOUT}s)"
        DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" bash -c \
            'apt-get install -y slurm-wlm munge || { apt-get update && apt-get install -y slurm-wlm munge; }' \
            >/tmp/mproc-slurm-apt.$$.log 2>&1
        apt_rc=$?
        tail -n 5 /tmp/mproc-slurm-apt.$$.log
        rm -f /tmp/mproc-slurm-apt.$$.log
        missing=$(missing_tools)
        [[ -n $missing ]] && skip "Slurm still not usable after apt-get install slurm-wlm munge (rc $apt_rc); missing: $missing"
    else
        skip "Slurm/munge not installed (missing: $missing) and cannot apt-get install (not root or no apt-get)"
    fi
fi
[[ $(id -u) -eq 0 ]] || skip "a private slurmd must run as root here (uid $(id -u))"
command -v mpirun >/dev/null 2>&1 || skip "mpirun not found: the sbatch jobs need Open MPI"

# shellcheck source=slurm_env.sh
source "$here/slurm_env.sh"

# --- bookkeeping -------------------------------------------------------------------------------
passed=0
failed=0
pass() {
    echo "PASS: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
    exit $?
}

# show_file FILE: print a job's output for a failure report.
show_file() {
    echo "----- ${1} -----"
    if [[ -f $1 ]]; then tail -n 60 "$1"; else echo "(no such file)"; fi
    echo "-----"
}

# submit OUTVAR SBATCH-ARGS...: sbatch from SRC_DIR into the work dir; job id in OUTVAR.
submit() {
    local __var=$1 out rc
    shift
    out=$(cd "$SRC_DIR" && sbatch --parsable -D "$WORK" "$@" 2>&1)
    rc=$?
    out=${out%%;*}
    if ((rc != 0)) || [[ ! $out =~ ^[0-9]+$ ]]; then
        echo "sbatch $* failed (rc $rc): $out"
        printf -v "$__var" '%s' ""
        return 1
    fi
    printf -v "$__var" '%s' "$out"
}

# wait_job ID: poll scontrol every 0.5 s until a final state or JOB_TIMEOUT; sets JOB_STATE,
# JOB_EXIT (e.g. 0:0) and JOB_OUT (StdOut path). Returns 1 on timeout (job cancelled).
wait_job() {
    local id=$1 deadline=$((SECONDS + JOB_TIMEOUT)) info
    ((deadline > TOTAL_TIMEOUT)) && deadline=$TOTAL_TIMEOUT
    JOB_STATE="" JOB_EXIT="" JOB_OUT=""
    while :; do
        info=$(scontrol show job "$id" 2>/dev/null)
        JOB_STATE=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | head -n1 | cut -d= -f2)
        JOB_EXIT=$(grep -o ' ExitCode=[0-9]*:[0-9]*' <<<"$info" | head -n1 | cut -d= -f2)
        JOB_OUT=$(grep -o 'StdOut=.*' <<<"$info" | head -n1 | cut -d= -f2-)
        case $JOB_STATE in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
            sleep 0.3 # let slurmstepd finish flushing the output file
            return 0
            ;;
        esac
        if ((SECONDS >= deadline)); then
            echo "job $id still ${JOB_STATE:-unknown} at the time limit (${JOB_TIMEOUT}s a job, ${TOTAL_TIMEOUT}s in all); cancelling"
            scancel "$id" >/dev/null 2>&1
            return 1
        fi
        sleep 0.5
    done
}

# report_job: details for a failed check.
report_job() {
    echo "job state=${JOB_STATE:-?} exit=${JOB_EXIT:-?} out=${JOB_OUT:-?}"
    [[ -n ${JOB_OUT:-} ]] && show_file "$JOB_OUT"
    slurm_env_logs 15
}

# --- checks ------------------------------------------------------------------------------------
for f in jobs/primes.sbatch jobs/pool_squares.sbatch jobs/wordcount.sbatch mpirun.sh; do
    [[ -f $SRC_DIR/$f ]] || {
        fail "$SRC_DIR/$f is missing"
        finish
    }
done
for f in jobs/primes jobs/pool_squares jobs/wordcount; do
    [[ -x $BUILD_DIR/$f ]] || {
        fail "$BUILD_DIR/$f is not built"
        finish
    }
done

t0=$SECONDS
slurm_env_start || {
    fail "private Slurm did not start"
    finish
}
echo "run_slurm_tests: Slurm up in $((SECONDS - t0))s ($(sinfo -h -o '%P %a %D %T %c cpus' | head -n1))"
WORK=$SLURM_ENV_DIR/work # removed with the cluster by slurm_env_stop
mkdir -p "$WORK"
export MPROC_BUILD_DIR=$BUILD_DIR
# The node claims 4 CPUs on what may be a 2-core machine; let idle MPI ranks yield the core
# (mpirun does this itself when it knows it oversubscribes, srun-launched ranks do not).
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}

# a) the primes job with 4 tasks
if submit id -n 4 jobs/primes.sbatch; then
    if wait_job "$id" && [[ $JOB_STATE == COMPLETED && $JOB_EXIT == 0:0 ]] &&
        [[ $JOB_OUT == "$WORK/primes-$id.out" ]] && grep -qF "$EXPECT_PRIMES" "$JOB_OUT"; then
        pass "a) sbatch -n 4 jobs/primes.sbatch: COMPLETED 0:0, primes-$id.out has '$EXPECT_PRIMES'"
    else
        fail "a) sbatch -n 4 jobs/primes.sbatch (want COMPLETED 0:0, $WORK/primes-$id.out with '$EXPECT_PRIMES')"
        report_job
    fi
else
    fail "a) sbatch -n 4 jobs/primes.sbatch was not accepted"
fi

# b) the seed job with its own #SBATCH defaults
if submit id jobs/pool_squares.sbatch; then
    if wait_job "$id" && [[ $JOB_STATE == COMPLETED && $JOB_EXIT == 0:0 ]] &&
        [[ $JOB_OUT == "$WORK/pool_squares-$id.out" ]] && grep -qF "$EXPECT_SQUARES" "$JOB_OUT"; then
        pass "b) sbatch jobs/pool_squares.sbatch: COMPLETED 0:0, output has '$EXPECT_SQUARES'"
    else
        fail "b) sbatch jobs/pool_squares.sbatch (want COMPLETED 0:0, output with '$EXPECT_SQUARES')"
        report_job
    fi
else
    fail "b) sbatch jobs/pool_squares.sbatch was not accepted"
fi

# b2) wordcount over a tree, twice with its journal (the second run resumes from it: every
#     file already counted): both COMPLETED 0:0 with the totals wc gives.
wc_dir=$WORK/wc-tree
mkdir -p "$wc_dir/sub"
for i in $(seq 1 20); do seq 1 $((i * 40)) | sed 's/$/ w1 w2/' >"$wc_dir/f$i"; done
printf 'a b c\n' >"$wc_dir/sub/g"
read -r wl ww wb <<<"$(find "$wc_dir" -type f -print0 | xargs -0 cat | wc)"
EXPECT_WC="total: $wl lines, $ww words, $wb bytes in 21 files"
wc_ok=0
for run in 1 2; do
    if WC_JOURNAL=$WORK/wc.journal submit id jobs/wordcount.sbatch "$wc_dir" && wait_job "$id" && [[ $JOB_STATE == COMPLETED && $JOB_EXIT == 0:0 ]] &&
        grep -qF "$EXPECT_WC" "$JOB_OUT"; then
        wc_ok=$((wc_ok + 1))
    else
        report_job
    fi
done
if [[ $wc_ok == 2 ]] && [[ -s $WORK/wc.journal ]]; then
    pass "b2) sbatch jobs/wordcount.sbatch DIR, twice with its journal: COMPLETED 0:0, '$EXPECT_WC'"
else
    fail "b2) sbatch jobs/wordcount.sbatch DIR (want two COMPLETED 0:0 runs with '$EXPECT_WC' and a journal)"
fi

# c) srun --mpi=pmix inside an allocation: every task is one rank of one MPI job, so only
#    rank 0 (the master) prints the result; under a wrong backend each task would print it.
mpi_list=$(srun --mpi=list 2>&1)
if grep -qw pmix <<<"$mpi_list"; then
    launch="srun --mpi=pmix"
    cat >"$WORK/srun_pmix.sbatch" <<'EOF'
#!/bin/bash
#SBATCH --job-name=mproc-srun-pmix
#SBATCH --output=srun_pmix-%j.out
cd "$SLURM_SUBMIT_DIR" || exit 1
srun --mpi=pmix "$MPROC_BUILD_DIR/jobs/pool_squares"
EOF
else
    launch="mpirun.sh (fallback)"
    echo "NOTE: c) this Slurm has no pmix MPI plugin (srun --mpi=list: $(tr '\n' ' ' <<<"$mpi_list"))"
    echo "NOTE: c) falling back to Open MPI's documented alternative: mpirun inside the allocation"
    cat >"$WORK/srun_pmix.sbatch" <<'EOF'
#!/bin/bash
#SBATCH --job-name=mproc-mpirun-alloc
#SBATCH --output=srun_pmix-%j.out
cd "$SLURM_SUBMIT_DIR" || exit 1
./mpirun.sh "$MPROC_BUILD_DIR/jobs/pool_squares"
EOF
fi
if submit id -n 4 "$WORK/srun_pmix.sbatch"; then
    if wait_job "$id" && [[ $JOB_STATE == COMPLETED && $JOB_EXIT == 0:0 ]] &&
        [[ $(grep -cF "$EXPECT_SQUARES" "$JOB_OUT" 2>/dev/null) == 1 ]]; then
        pass "c) $launch -n 4 in an allocation: one MPI job, '$EXPECT_SQUARES' printed once"
    else
        fail "c) $launch -n 4 in an allocation (want COMPLETED 0:0 and '$EXPECT_SQUARES' exactly once)"
        report_job
    fi
else
    fail "c) $launch job was not accepted"
fi

# d) a failing job: its master exits non-zero -> FAILED with that exit code.
if grep -aqF -- '--fail' "$BUILD_DIR/jobs/primes"; then
    fail_how="jobs/primes.sbatch --fail"
    submit id -n 2 jobs/primes.sbatch --fail
    sub=$?
else
    # primes has no --fail yet: run the real primes.sbatch over a stand-in program exiting 3.
    fail_how="jobs/primes.sbatch over a stand-in primes that exits 3 (primes has no --fail yet)"
    mkdir -p "$WORK/failbuild/jobs"
    printf '#!/bin/sh\necho "stand-in primes: failing on purpose" >&2\nexit 3\n' >"$WORK/failbuild/jobs/primes"
    chmod +x "$WORK/failbuild/jobs/primes"
    MPROC_BUILD_DIR=$WORK/failbuild submit id -n 2 jobs/primes.sbatch
    sub=$?
fi
if ((sub == 0)); then
    if wait_job "$id" && [[ $JOB_STATE == FAILED && $JOB_EXIT == 3:0 ]]; then
        pass "d) $fail_how: FAILED, ExitCode=$JOB_EXIT"
    else
        fail "d) $fail_how (want FAILED with ExitCode=3:0, the master's exit status)"
        report_job
    fi
else
    fail "d) $fail_how was not accepted"
fi

# e) an impossible request is refused by sbatch itself, and no job is queued.
before=$(squeue -h -o '%i' | wc -l)
out=$(cd "$SRC_DIR" && sbatch -n 64 -D "$WORK" jobs/primes.sbatch 2>&1)
rc=$?
after=$(squeue -h -o '%i' | wc -l)
if ((rc != 0)) && ((after == before)); then
    pass "e) sbatch -n 64 refused at submit: $(head -n1 <<<"$out")"
else
    fail "e) sbatch -n 64 was accepted (rc $rc): $out"
fi

echo "run_slurm_tests: total $((SECONDS - t0))s"
slurm_env_stop
finish
