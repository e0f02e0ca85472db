#!/bin/sh
# tests/interop/check_demo.sh JOULE SOURCE_DIR: `joule demo` from another folder finds the
# bundled CNN, writes joule-demo/report.{json,md,html} and the compressed model, prints exactly
# five lines on stdout and nothing on stderr (not a terminal), and exits 3 when the compressed
# model misses --min-accuracy. Evaluates 500 test images without energy, so it stays quick.
# Skipped (77) without the fixture or Fashion-MNIST.
set -eu
joule=$1
src=$2
case $joule in /*) ;; *) joule=$PWD/$joule ;; esac
[ -f "$src/tests/data/cnn.onnx" ] || { echo "check_demo: no cnn.onnx fixture, skipped"; exit 77; }
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] ||
    { echo "check_demo: no Fashion-MNIST (dataset-fashion-mnist), skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() {
    echo "check_demo: $*" >&2
    exit 1
}
"$joule" demo --limit 500 --calib-limit 100 --no-energy --threads 1 >out.txt 2>err.txt ||
    { cat out.txt err.txt >&2; fail "joule demo failed"; }
[ "$(wc -l <out.txt)" = 5 ] || { cat out.txt >&2; fail "want a five-line summary"; }
[ ! -s err.txt ] || { cat err.txt >&2; fail "stderr is not empty off a terminal"; }
grep -q '^top-1 .*500 images' out.txt || fail "no top-1 line"
for f in report.json report.md report.html cnn-pruned50-int8.onnx; do
    [ -s "joule-demo/$f" ] || fail "missing joule-demo/$f"
done
grep -q '"dtype_after":[[:space:]]*"int8"' joule-demo/report.json || fail "no int8 layer in the report"
rc=0
"$joule" demo --limit 200 --calib-limit 50 --no-energy --threads 1 -o d2 --min-accuracy 0.999 \
    >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "--min-accuracy 0.999: exit status $rc, want 3"
rc=0
"$joule" demo --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a bad option: exit status $rc, want 2"
echo "check_demo: 1 passed, 0 failed"
