#!/bin/sh
# tests/interop/measure_quant.sh: the accuracy and size sweep behind the quantization targets
# (not a meson test: it evaluates 10,000 images per model and takes tens of minutes).
#
#   tests/interop/measure_quant.sh BUILD_DIR [CALIB_ITEMS]
#
# For every fixture (cleaned: BatchNorm folded) it writes fp16, int8 dynamic, int8 static with
# each calibration method (CALIB_ITEMS training images, default 1000) and QOperator, then prints
# one Markdown table row per model: file size against the fp32 fixture, top-1 on the
# Fashion-MNIST test set through joule's engine and the drop against fp32. Needs
# /usr/share/datasets/fashion-mnist.
set -eu
build=${1:?usage: measure_quant.sh BUILD_DIR [CALIB_ITEMS]}
items=${2:-1000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tool="$build/tests/interop/quant_tool"
data="$root/tests/data"
fm=/usr/share/datasets/fashion-mnist
test_set="$fm/t10k-images-idx3-ubyte.gz"
calib="$fm/train-images-idx3-ubyte.gz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

top1() { "$tool" eval "$1" "$test_set" | sed 's/.*"top1":\([0-9.]*\).*/\1/'; }
size() { stat -c %s "$1"; }

echo "| model | variant | size vs fp32 | top-1 % | drop (pt) |"
echo "|---|---|---|---|---|"
for f in mlp cnn mobile transformer; do
    src="$data/$f.onnx"
    [ -f "$src" ] || continue
    base="$tmp/${f}_fp32.onnx"
    "$tool" cleanup "$src" "$base" > /dev/null
    ref=$(top1 "$base")
    full=$(size "$src")
    echo "| $f | fp32 | 1.000 | $ref | |"
    row() {
        acc=$(top1 "$2")
        awk -v f="$f" -v v="$1" -v s="$(size "$2")" -v t="$full" -v a="$acc" -v r="$ref" \
            'BEGIN { printf "| %s | %s | %.3f | %s | %+.2f |\n", f, v, s / t, a, r - a }'
    }
    "$tool" fp16 "$base" "$tmp/m.onnx" > /dev/null && row fp16 "$tmp/m.onnx"
    "$tool" dynamic "$base" "$tmp/m.onnx" > /dev/null && row int8-dynamic "$tmp/m.onnx"
    for m in minmax percentile entropy mse; do
        "$tool" static "$base" "$tmp/m.onnx" "$calib" --limit "$items" --method "$m" > /dev/null
        row "int8 $m" "$tmp/m.onnx"
    done
    "$tool" static "$base" "$tmp/m.onnx" "$calib" --limit "$items" --qoperator > /dev/null
    row "int8 qoperator" "$tmp/m.onnx"
done
