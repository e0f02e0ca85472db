#!/bin/sh
# tests/interop/check_compress_cli.sh: `joule compress` on bad input, run on the real program.
# Every case must exit non-zero with one line on stderr that names the option, recipe, node or
# file, leave no output (nor a temporary file) behind, and leave the input byte-identical:
# sparsity outside [0,1), N >= M, an unknown pass or op in a recipe, calibration data whose
# shape does not fit the model, an empty calibration set, absurd counts. One good run with
# --calib-limit checks that the limit is honoured.
# usage: check_compress_cli.sh JOULE_EXE SOURCE_DIR
set -u
joule=$1
src=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$src/tests/data/cnn.onnx" "$tmp/cnn.onnx"
model=$tmp/cnn.onnx
before=$(cksum <"$model")
out=$tmp/out/o.onnx
mkdir -p "$tmp/out"
fail=0

# expect STATUS PATTERN ARGS...: exit status STATUS and one stderr line matching PATTERN
expect() {
    want=$1 pattern=$2
    shift 2
    "$joule" compress "$model" -o "$out" "$@" >"$tmp/stdout" 2>"$tmp/err"
    got=$?
    lines=$(wc -l <"$tmp/err")
    left=$(ls -A "$tmp/out")
    if [ "$got" != "$want" ]; then
        echo "FAIL: joule compress $*: status $got, expected $want"; cat "$tmp/err"; fail=1
    elif [ "$lines" != 1 ] || ! grep -Eq -e "$pattern" "$tmp/err"; then
        echo "FAIL: joule compress $*: stderr should be one line matching '$pattern'"
        cat "$tmp/err"; fail=1
    elif [ -n "$left" ]; then
        echo "FAIL: joule compress $*: left '$left' behind"; fail=1
    else
        echo "ok: joule compress $* -> $got: $(cat "$tmp/err")"
    fi
    rm -rf "$tmp/out" && mkdir -p "$tmp/out"
}

expect 2 "--prune .*\[0,1\).*'1'" --prune 1
expect 2 "--prune .*\[0,1\).*'-0.2'" --prune -0.2
expect 2 "--prune .*'nan'" --prune nan
expect 2 "--prune-channels .*'1.5'" --prune-channels 1.5
expect 2 "--channel-multiple .*'0'" --prune-channels 0.3 --channel-multiple 0
expect 2 "--channel-multiple .*'16x'" --prune-channels 0.3 --channel-multiple 16x
expect 2 "--channel-multiple .*'99999'" --prune-channels 0.3 --channel-multiple 99999
expect 2 "--channel-multiple need --prune-channels" --prune 0.5 --channel-multiple 16
expect 2 "--prune-pattern.*'4:4'.*N must be less than M" --prune-pattern 4:4
expect 2 "--prune-pattern.*'8:4'" --prune-pattern 8:4
expect 2 "--calib-limit .*'0'" --quant int8 --calib "$tmp/none.npy" --calib-limit 0
expect 2 "--prune-correct-bias needs calibration data" --prune 0.5 --prune-correct-bias
expect 2 "--prune-correct-bias needs --prune" --prune-correct-bias --calib "$tmp/none.npy"
expect 2 "--calib and --calib-limit need --quant int8 or --prune-correct-bias" --prune 0.5 \
    --calib "$tmp/none.npy"

printf '{"passes":[{"pass":"prune","sparsity":0.5,"overrides":[{"op":"Convv","sparsity":0.3}]}]}' \
    >"$tmp/op.json"
expect 1 "override 0: op 'Convv'" --recipe "$tmp/op.json"
printf '{"passes":[{"pass":"quantize_everything"}]}' >"$tmp/pass.json"
expect 1 "pass.json.*unknown pass 'quantize_everything'" --recipe "$tmp/pass.json"
printf '{"passes":[{"pass":"prune","sparsity":1.5}]}' >"$tmp/sp.json"
expect 1 "sp.json.*outside \[0, 1\)" --recipe "$tmp/sp.json"
printf '{"passes":[{"pass":"prune","pattern":"3:2"}]}' >"$tmp/nm.json"
expect 1 "nm.json.*3:2" --recipe "$tmp/nm.json"
printf '{"passes":[' >"$tmp/trunc.json"
expect 1 "trunc.json" --recipe "$tmp/trunc.json"

# calibration data: items of the wrong shape, an empty set, a missing file
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 -c '
import sys, numpy as np
np.save(sys.argv[1], np.zeros((4, 3, 32, 32), np.float32))
np.save(sys.argv[2], np.zeros((0, 1, 28, 28), np.float32))
x = np.random.default_rng(0).random((40, 1, 28, 28), dtype=np.float32)
x[16:] = 1000  # items past the limit would stretch the input range 1000-fold
np.save(sys.argv[3], x)
' "$tmp/wrong.npy" "$tmp/empty.npy" "$tmp/good.npy"
    expect 1 "wrong.npy.*\[3,32,32\].*input" --quant int8 --calib "$tmp/wrong.npy"
    expect 1 "empty.npy.*empty" --quant int8 --calib "$tmp/empty.npy"
    expect 1 "bias correction: .*wrong.npy.*\[3,32,32\]" --prune 0.5 --prune-correct-bias \
        --calib "$tmp/wrong.npy"
    # --calib-limit 16 of 40 items: only the first 16 (values in [0,1)) set the input's range,
    # so the input QuantizeLinear's scale is about 1/255, not 1000/255
    "$joule" compress "$model" -o "$out" --quant int8 --calib "$tmp/good.npy" --calib-limit 16 \
        --calib-method minmax >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: --calib-limit run"; cat "$tmp/err"; fail=1; }
    /usr/bin/python3 -c '
import sys, onnx, numpy as np
from onnx import numpy_helper
g = onnx.load(sys.argv[1]).graph
init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
q = [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == g.input[0].name]
s = float(init[q[0].input[1]]) if q else -1
print("input scale with --calib-limit 16:", s)
sys.exit(0 if 0 < s < 0.01 else 1)
' "$out" || { echo "FAIL: --calib-limit did not limit calibration"; fail=1; }
    rm -rf "$tmp/out" && mkdir -p "$tmp/out"
fi
expect 1 "missing.npy" --quant int8 --calib "$tmp/missing.npy"

# a name pattern that selects nothing is not an error, but it is said on stderr (and the model
# is still written): a typo must not change nothing silently
"$joule" compress "$model" -o "$out" --prune 0.5 --prune-skip '/9/Gemn' --report "$tmp/rep/" \
    >/dev/null 2>"$tmp/err"
got=$?
if [ "$got" != 0 ] || [ ! -s "$out" ] ||
    ! grep -q "warning: prune: skip pattern '/9/Gemn' matches no prunable layer" "$tmp/err" ||
    ! grep -q "Warning (prune): skip pattern '/9/Gemn'" "$tmp/rep/report.md"; then
    echo "FAIL: unmatched --prune-skip: status $got, stderr:"; cat "$tmp/err"; fail=1
else
    echo "ok: unmatched --prune-skip -> 0: $(cat "$tmp/err")"
fi
"$joule" compress "$model" -o "$out" --prune 0.5 --prune-skip '/9/Gemm' >/dev/null 2>"$tmp/err"
[ -s "$tmp/err" ] && { echo "FAIL: a matching --prune-skip warned:"; cat "$tmp/err"; fail=1; }
rm -rf "$tmp/out" && mkdir -p "$tmp/out"

[ "$(cksum <"$model")" = "$before" ] || { echo "FAIL: the input model changed"; fail=1; }
exit $fail
