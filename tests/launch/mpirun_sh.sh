#!/bin/bash
# mpirun_sh.sh ROOT - what `./mpirun.sh --help` and the README promise of mpirun.sh, checked with
# a fake launcher (MPROC_MPIRUN) that prints the command line it was given, so no MPI is needed:
# the default rank count (cores + 1; $SLURM_NTASKS inside Slurm), --allow-run-as-root when root,
# --oversubscribe past the cores (not twice when given), every MPROC_* variable passed with -x,
# mpirun's options (with their values) kept in order, the program's own arguments untouched,
# clear errors (exit 2) for a bad rank count or a missing program, --help, and the fallback to
# local fork workers when there is no launcher, and building first (with a fake cmake).
set -u
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The fake launcher prints one argument per line.
cat >"$tmp/fake-mpirun" <<'EOS'
#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done
EOS
# A "program" that reports how it was run (for the no-MPI fallback).
cat >"$tmp/prog" <<'EOS'
#!/bin/sh
echo "prog ran with MPROC_BACKEND=${MPROC_BACKEND:-unset} args: $*"
EOS
chmod +x "$tmp/fake-mpirun" "$tmp/prog"
cores=$(nproc)
launch() { env -u SLURM_NTASKS MPROC_NO_BUILD=1 MPROC_MPIRUN="$tmp/fake-mpirun" "$@"; }
# has ARGS-FILE WORD...: the words appear in this order, one after another.
has() {
    local f=$1
    shift
    local want
    want=$(printf '%s\n' "$@")
    grep -qxF -- "$1" "$f" || return 1
    python3 - "$f" "$want" <<'EOP'
import sys
got = open(sys.argv[1]).read().split('\n')
want = sys.argv[2].split('\n')
sys.exit(0 if any(got[i:i + len(want)] == want for i in range(len(got))) else 1)
EOP
}

# 1. Defaults: -np cores+1, the program last with its own arguments.
launch "$root/mpirun.sh" "$tmp/prog" -np 7 --flag >"$tmp/a" 2>&1 || fail "default launch exited $?"
has "$tmp/a" -np $((cores + 1)) "$tmp/prog" -np 7 --flag || fail "default: want -np $((cores + 1)) then the program and its arguments: $(tr '\n' ' ' <"$tmp/a")"
if [ "$(id -u)" = 0 ]; then
    [ "$(grep -cx -- --allow-run-as-root "$tmp/a")" = 1 ] || fail "as root: want --allow-run-as-root once"
fi
# cores + 1 ranks are more than the cores: --oversubscribe, once.
[ "$(grep -cx -- --oversubscribe "$tmp/a")" = 1 ] || fail "cores + 1 ranks: want --oversubscribe once: $(tr '\n' ' ' <"$tmp/a")"

# 2. Within the cores: no --oversubscribe; -np=N and -n N forms.
launch "$root/mpirun.sh" -np=1 "$tmp/prog" >"$tmp/b" 2>&1
has "$tmp/b" -np 1 "$tmp/prog" || fail "-np=1 not passed as -np 1"
grep -qx -- --oversubscribe "$tmp/b" && fail "-np 1: --oversubscribe added"
launch "$root/mpirun.sh" -n 1 "$tmp/prog" >"$tmp/b" 2>&1
has "$tmp/b" -np 1 "$tmp/prog" || fail "-n 1 not passed as -np 1"

# 3. Given by the user: not added a second time.
launch "$root/mpirun.sh" --oversubscribe --allow-run-as-root -np 64 "$tmp/prog" >"$tmp/c" 2>&1
[ "$(grep -cx -- --oversubscribe "$tmp/c")" = 1 ] || fail "--oversubscribe given: want it once"
[ "$(grep -cx -- --allow-run-as-root "$tmp/c")" = 1 ] || fail "--allow-run-as-root given: want it once"
launch "$root/mpirun.sh" --map-by ppr:2:core:OVERSUBSCRIBE -np 64 "$tmp/prog" >"$tmp/c" 2>&1
grep -qx -- --oversubscribe "$tmp/c" && fail "--map-by ...:OVERSUBSCRIBE given: --oversubscribe added as well"

# 4. Inside Slurm: -np $SLURM_NTASKS, oversubscribed only past it.
env SLURM_NTASKS=5 MPROC_NO_BUILD=1 MPROC_MPIRUN="$tmp/fake-mpirun" "$root/mpirun.sh" "$tmp/prog" >"$tmp/d" 2>&1
has "$tmp/d" -np 5 "$tmp/prog" || fail "SLURM_NTASKS=5: want -np 5: $(tr '\n' ' ' <"$tmp/d")"
grep -qx -- --oversubscribe "$tmp/d" && fail "SLURM_NTASKS=5, -np 5: --oversubscribe added"
env SLURM_NTASKS=2 MPROC_NO_BUILD=1 MPROC_MPIRUN="$tmp/fake-mpirun" "$root/mpirun.sh" -np 3 "$tmp/prog" >"$tmp/d" 2>&1
grep -qx -- --oversubscribe "$tmp/d" || fail "SLURM_NTASKS=2, -np 3: want --oversubscribe"

# 5. MPROC_* variables go to every rank with -x; others do not.
launch env MPROC_MPI_EXECUTORS=2 MPROC_TEST_X=1 OTHER_VAR=1 "$root/mpirun.sh" -np 2 "$tmp/prog" >"$tmp/e" 2>&1
has "$tmp/e" -x MPROC_MPI_EXECUTORS || fail "MPROC_MPI_EXECUTORS not passed with -x"
has "$tmp/e" -x MPROC_TEST_X || fail "MPROC_TEST_X not passed with -x"
grep -qx OTHER_VAR "$tmp/e" && fail "OTHER_VAR passed with -x"

# 6. mpirun's options and their values, in order, before the program.
launch "$root/mpirun.sh" --mca btl tcp,self --hostfile hosts -np 2 --bind-to none "$tmp/prog" x >"$tmp/f" 2>&1
has "$tmp/f" --mca btl tcp,self --hostfile hosts --bind-to none -np 2 "$tmp/prog" x ||
    fail "options not kept in order: $(tr '\n' ' ' <"$tmp/f")"
launch "$root/mpirun.sh" -np 2 --some-opt val -- "$tmp/prog" >"$tmp/f" 2>&1
has "$tmp/f" --some-opt val -np 2 "$tmp/prog" || fail "an unknown option with a value before --: $(tr '\n' ' ' <"$tmp/f")"
launch "$root/mpirun.sh" -np 2 "$tmp/prog" a -- b >"$tmp/f" 2>&1
has "$tmp/f" -np 2 "$tmp/prog" a -- b || fail "a -- among the program's arguments: $(tr '\n' ' ' <"$tmp/f")"
launch "$root/mpirun.sh" -np 2 --some-flag "$tmp/prog" a >"$tmp/f" 2>&1
has "$tmp/f" --some-flag -np 2 "$tmp/prog" a || fail "an unknown flag without --: $(tr '\n' ' ' <"$tmp/f")"
launch "$root/mpirun.sh" -np 2 --some-flag -- "$tmp/prog" a -- b >"$tmp/f" 2>&1
has "$tmp/f" --some-flag -np 2 "$tmp/prog" a -- b || fail "an unknown flag, --, the program with a --: $(tr '\n' ' ' <"$tmp/f")"
# Flags without a value that mpirun.sh knows: the program after them is the program, whatever
# its own arguments hold (a -- among them took it for the flag's value).
for flag in --enable-recovery --tag-output --report-bindings; do
    launch "$root/mpirun.sh" -np 2 "$flag" "$tmp/prog" a -- b >"$tmp/f" 2>&1
    has "$tmp/f" "$flag" -np 2 "$tmp/prog" a -- b || fail "$flag, then the program with a -- in its arguments: $(tr '\n' ' ' <"$tmp/f")"
    launch "$root/mpirun.sh" -np 2 "$flag" "$tmp/prog" -- b >"$tmp/f" 2>&1
    has "$tmp/f" "$flag" -np 2 "$tmp/prog" -- b || fail "$flag, then the program and -- b: $(tr '\n' ' ' <"$tmp/f")"
done
launch "$root/mpirun.sh" -np 2 --foo val --hostfile h -- "$tmp/prog" a >"$tmp/f" 2>&1
has "$tmp/f" --foo val --hostfile h -np 2 "$tmp/prog" a || fail "two options before --: $(tr '\n' ' ' <"$tmp/f")"

# 7. Clear errors, exit 2, nothing launched.
for bad in 0 abc -3; do
    launch "$root/mpirun.sh" -np "$bad" "$tmp/prog" >"$tmp/g" 2>&1
    rc=$?
    [ $rc = 2 ] && grep -q "rank count must be a positive number" "$tmp/g" || fail "-np $bad: exit $rc, $(cat "$tmp/g")"
    grep -qx -- "$tmp/prog" "$tmp/g" && fail "-np $bad: launched anyway"
done
launch "$root/mpirun.sh" -np 2 "$tmp/no-such-program" >"$tmp/g" 2>&1
rc=$?
[ $rc = 2 ] && grep -q "no such program" "$tmp/g" || fail "missing program: exit $rc, $(cat "$tmp/g")"
launch "$root/mpirun.sh" -np >"$tmp/g" 2>&1
[ $? = 2 ] && grep -q "needs a number" "$tmp/g" || fail "-np without a number: $(cat "$tmp/g")"
launch "$root/mpirun.sh" >"$tmp/g" 2>&1
[ $? = 2 ] && grep -q "^usage:" "$tmp/g" || fail "no program: want the usage and exit 2"

# 8. --help: exit 0, the usage.
launch "$root/mpirun.sh" --help >"$tmp/h" 2>&1 || fail "--help exited $?"
grep -q "^usage: ./mpirun.sh" "$tmp/h" || fail "--help printed no usage"

# 9. No launcher: the program runs once on local fork workers, and says how to get MPI.
env -u SLURM_NTASKS MPROC_NO_BUILD=1 MPROC_MPIRUN=/nonexistent/mpirun "$root/mpirun.sh" -np 4 "$tmp/prog" a b >"$tmp/i" 2>&1
rc=$?
[ $rc = 0 ] || fail "fallback exited $rc"
[ "$(grep -c "^prog ran with MPROC_BACKEND=fork args: a b$" "$tmp/i")" = 1 ] || fail "fallback: program not run once on fork: $(cat "$tmp/i")"
grep -q "apt-get install openmpi-bin libopenmpi-dev" "$tmp/i" || fail "fallback: no word on installing Open MPI"

# 10. Building first: a program in the build directory is (re)built when a source is newer
# than the last build, once; not with MPROC_NO_BUILD=1, nor for a program elsewhere. A fake
# cmake first on PATH records its calls (the real tree is never rebuilt); the sources are made
# "newer" by dating the stamp of the last build back.
bdir=$tmp/build
mkdir -p "$tmp/bin" "$bdir"
cat >"$tmp/bin/cmake" <<EOS
#!/bin/sh
echo "cmake \$*" >>"$tmp/cmake.log"
EOS
chmod +x "$tmp/bin/cmake"
cp "$tmp/prog" "$bdir/prog"
built() { PATH="$tmp/bin:$PATH" env -u SLURM_NTASKS MPROC_BUILD_DIR="$bdir" MPROC_MPIRUN="$tmp/fake-mpirun" "$@"; }
calls() { [ -f "$tmp/cmake.log" ] && grep -c . "$tmp/cmake.log" || echo 0; }
touch -d '2000-01-01' "$bdir/.mproc_built"
built "$root/mpirun.sh" -np 1 "$bdir/prog" >"$tmp/j" 2>&1 || fail "build launch exited $?: $(cat "$tmp/j")"
[ "$(calls)" = 2 ] || fail "sources newer than the last build: want cmake configure + build, got $(calls) calls"
grep -q -- "--build $bdir" "$tmp/cmake.log" || fail "the build was not in MPROC_BUILD_DIR: $(cat "$tmp/cmake.log")"
grep -q "building mproc in $bdir" "$tmp/j" || fail "no word that it builds"
has "$tmp/j" -np 1 "$bdir/prog" || fail "after the build: not launched"
built "$root/mpirun.sh" -np 1 "$bdir/prog" >"$tmp/j" 2>&1
[ "$(calls)" = 2 ] || fail "nothing moved since the last build: built again ($(calls) cmake calls)"
touch -d '2000-01-01' "$bdir/.mproc_built"
built env MPROC_NO_BUILD=1 "$root/mpirun.sh" -np 1 "$bdir/prog" >"$tmp/j" 2>&1
[ "$(calls)" = 2 ] || fail "MPROC_NO_BUILD=1: built anyway"
built "$root/mpirun.sh" -np 1 "$tmp/prog" >"$tmp/j" 2>&1
[ "$(calls)" = 2 ] || fail "a program outside the build directory: built anyway"
printf '#!/bin/sh\nexit 1\n' >"$tmp/bin/cmake"
built "$root/mpirun.sh" -np 1 "$bdir/prog" >"$tmp/j" 2>&1
rc=$?
[ $rc = 2 ] && grep -q "the build failed" "$tmp/j" || fail "a failing build: want exit 2 and 'the build failed', got $rc: $(cat "$tmp/j")"
grep -qx -- "$bdir/prog" "$tmp/j" && fail "a failing build: launched anyway"

[ $fails = 0 ] || exit 1
echo "ok: mpirun.sh's rank counts, flags, variables, errors, fallback and building first"
