#!/bin/sh
# Instruction counts of bench/match_callgrind.py's passes: bench/match_callgrind.sh OUT [its options]
# Prints the instructions of each pass (from OUT.1, OUT.2, ...).
set -e
out=$1; shift
here=$(dirname "$0")
py=${PYTHON:-$here/../.venv/bin/python}
ready=$(mktemp -u /tmp/cg-ready.XXXXXX)
rm -f "$out".*
CG_READY=$ready valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
    --toggle-collect=functools_reduce --dump-after=functools_reduce \
    --callgrind-out-file="$out" "$py" "$here/match_callgrind.py" "$@" 2>"$out.log" &
vg=$!
while [ ! -s "$ready" ]; do
    if ! kill -0 $vg 2>/dev/null; then cat "$out.log"; exit 1; fi
    sleep 1
done
callgrind_control -i on "$(cat "$ready")" >/dev/null
rm -f "$ready"
wait $vg
grep '^pass\|^code' "$out.log" || true
for f in "$out".[0-9]*; do
    printf '%s %s\n' "$f" "$(grep '^summary:' "$f" | cut -d' ' -f2)"
done
