#!/usr/bin/env bash
# progress_file.sh DEMO - the progress bar into a file or a pipe (a Slurm output file; under
# mpirun): with MPROC_PROGRESS=1, a map of about 10 s must write a plain "mproc: ..." line no
# sooner than a second after it starts, then one every 5 s (not more often, and not much less),
# and a last one saying 100% and "took"; a map shorter than a second writes none. Each line of
# stderr is stamped as it arrives through a pipe. Exit 1 on a broken promise.
set -u
demo=${1:?usage: progress_file.sh DEMO}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0
stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
t0=$EPOCHREALTIME
{ env MPROC_PROGRESS=1 "$demo" 2000 2>&1 >/dev/null; echo "EXIT=$?"; } | stamp >"$out"
cat "$out"
grep -q ' EXIT=0$' "$out" || { echo "FAIL: the demo did not end with status 0"; fail=1; }
python3 - "$out" "$t0" <<'EOP' || fail=1
import re, sys
t0 = float(sys.argv[2])
lines = [l.split(' ', 1) for l in open(sys.argv[1]).read().splitlines()]
bars = [(float(t) - t0, s) for t, s in lines if s.startswith('mproc: nap10 [')]
finals = [b for b in bars if re.search(r'100% 2000/2000 .*took \d', b[1])]
ok = True
def fail(msg):
    global ok
    ok = False
    print('FAIL:', msg)
if len(finals) != 1 or bars[-1] != finals[0]:
    fail(f'{len(finals)} final lines saying 100% and took, want 1, last')
steps = bars[:-1]
if len(steps) < 2:
    fail(f'{len(steps)} lines before the last in a run of about 10 s, want one at 1 s, one every 5 s')
elif steps[0][0] < 0.9:
    fail(f'the first line came {steps[0][0]:.2f} s after the start, want none before a second')
for (a, _), (b, _) in zip(steps, steps[1:]):
    if not 4.8 <= b - a <= 8.0:
        fail(f'lines {b - a:.2f} s apart, want every 5 s')
print('ok' if ok else 'failed', ':', ', '.join(f'{t:.2f}' for t, _ in bars), 's after the start')
sys.exit(0 if ok else 1)
EOP
# A call shorter than a second draws nothing.
short=$(env MPROC_PROGRESS=1 "$demo" 20 2>&1 >/dev/null)
[ -z "$short" ] || { echo "FAIL: a call of 0.1 s wrote: $short"; fail=1; }
[ $fail = 0 ] && echo "ok: plain progress lines into a pipe at 1 s, every 5 s, and at the end"
exit $fail
