#!/bin/sh
# tests/interop/check_eval_cli.sh: `joule eval`'s exit statuses and one-line errors, run on the
# real program: 0 ok, 1 error (bad data, no CUDA backend), 2 usage, 3 below --min-accuracy; the
# progress bar never reaches a non-terminal stderr.
# usage: check_eval_cli.sh JOULE_EXE SOURCE_DIR
set -u
joule=$1
src=$2
mlp=$src/tests/data/mlp.onnx
imgs=$src/tests/data/fmnist_test64.npy
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect STATUS PATTERN ARGS...: exit status STATUS, and stderr matching PATTERN (grep -E) on
# one line ('' for an empty stderr)
expect() {
    want=$1 pattern=$2
    shift 2
    "$joule" eval "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$got" != "$want" ]; then
        echo "FAIL: joule eval $*: status $got, expected $want"; cat "$tmp/err"; fail=1
    elif [ -z "$pattern" ] && [ -s "$tmp/err" ]; then
        echo "FAIL: joule eval $*: unexpected stderr"; cat "$tmp/err"; fail=1
    elif [ -n "$pattern" ] && { [ "$lines" != 1 ] || ! grep -Eq -e "$pattern" "$tmp/err"; }; then
        echo "FAIL: joule eval $*: stderr should be one line matching '$pattern'"; cat "$tmp/err"
        fail=1
    else
        echo "ok: joule eval $* -> $got"
    fi
}

expect 0 '' "$mlp" --data "$imgs" --threads 1
grep -q '^top-1 ' "$tmp/out" || { echo "FAIL: no top-1 line"; fail=1; }
expect 0 '' "$mlp" --data "$imgs" --threads 1 --json --min-accuracy 0.5
grep -q '"passed":[[:space:]]*true' "$tmp/out" || { echo "FAIL: no passed in JSON"; fail=1; }
expect 3 'below --min-accuracy' "$mlp" --data "$imgs" --threads 1 --min-accuracy 100%
expect 2 'unknown option' "$mlp" --data "$imgs" --bogus

# --predictions: one int64 per item, the argmax of the reference (PyTorch) logits
expect 0 '' "$mlp" --data "$imgs" --threads 1 --predictions "$tmp/pred.npy"
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 -c '
import sys, numpy as np
p = np.load(sys.argv[1]); ref = np.load(sys.argv[2]).argmax(1)
sys.exit(0 if p.dtype == np.int64 and p.shape == ref.shape and (p == ref).all() else 1)
' "$tmp/pred.npy" "$src/tests/data/mlp_ref_logits64.npy" ||
        { echo "FAIL: --predictions differ from the reference logits' argmax"; fail=1; }
fi
expect 1 'pred.npy' "$mlp" --data "$imgs" --threads 1 --predictions "$tmp/no/such/dir/pred.npy"
expect 2 'no MODEL' --data "$imgs"
expect 2 '--batch wants' "$mlp" --batch 0
expect 2 '--layers needs --baseline' "$mlp" --layers
expect 1 'cuda backend' "$mlp" --data "$imgs" --backend cuda
head -c 8192 /dev/zero >"$tmp/x32.f32"
expect 1 'x32.f32: items are \[1,32,32\] but .*wants \[batch,1,28,28\]' "$mlp" \
    --data "$tmp/x32.f32" --raw-shape 1x32x32
printf 'not data' >"$tmp/junk.bin"
expect 1 'junk.bin: unknown data format \(bad magic' "$mlp" --data "$tmp/junk.bin"
expect 1 'cannot open' "$mlp" --data "$tmp/missing.npy"
exit $fail
