#!/bin/sh
# tests/interop/check_batch.sh JOULE SOURCE_DIR: `joule batch` on a manifest of every fixture
# model (tests/data/*.onnx) times three recipes (a recipe file, two inline ones), plus one
# deliberately truncated model. The run must finish with every real model done and its report
# written, the broken one recorded as failed with its file named, and exit status 1; a second
# run with --resume must skip every done model; --shard K/3 must cover each model exactly once.
# Uses the 64 bundled test images, so it takes well under two minutes on two cores.
set -eu
joule=$1
src=$2
case $joule in /*) ;; *) joule=$PWD/$joule ;; esac
[ -f "$src/tests/data/cnn.onnx" ] && [ -f "$src/tests/data/fmnist_test64.npy" ] ||
    { echo "$(basename "$0"): no fixture models in $src/tests/data, skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fail() {
    echo "check_batch: $*" >&2
    exit 1
}

head -c 20000 "$src/tests/data/cnn.onnx" >broken.onnx
printf '%s\n' '{"passes": [{"pass": "cleanup"}, {"pass": "prune", "sparsity": 0.5}]}' >prune50.json
r2='{"passes": [{"pass": "prune", "sparsity": 0.8, "scope": "global"}, {"pass": "sparse_storage"}]}'
r3='{"passes": [{"pass": "cleanup"}, {"pass": "prune_channels", "ratio": 0.25}]}'

n=0
entries=""
for m in "$src"/tests/data/*.onnx; do
    base=$(basename "$m" .onnx)
    for r in p50 p80 ch25; do
        case $r in
        p50) recipe='"prune50.json"' ;;
        p80) recipe=$r2 ;;
        ch25) recipe=$r3 ;;
        esac
        entries="$entries{\"name\": \"$base-$r\", \"model\": \"$m\", \"output\": \"out/$base-$r.onnx\", \"recipe\": $recipe},
"
        n=$((n + 1))
    done
done
[ "$n" -ge 6 ] || fail "expected at least two fixture models in $src/tests/data"
cat >manifest.json <<JSON
{"summary_dir": "out",
 "defaults": {"data": "$src/tests/data/fmnist_test64.npy"},
 "models": [
$entries{"name": "broken", "model": "broken.onnx", "output": "out/broken.onnx", "recipe": "prune50.json"}
 ]}
JSON
total=$((n + 1))

rc=0
"$joule" batch manifest.json --jobs 2 --threads 1 >run1.txt 2>err1.txt || rc=$?
[ "$rc" = 1 ] || { cat run1.txt err1.txt >&2; fail "first run: exit status $rc, want 1 (one model failed)"; }
[ -f out/summary.csv ] && [ -f out/summary.json ] || fail "no summary.csv/summary.json"
done_n=$(grep -c ',done,' out/summary.csv || true)
[ "$done_n" = "$n" ] || { cat out/summary.csv >&2; fail "$done_n of $n models done"; }
grep -q ',broken,failed,.*broken.onnx' out/summary.csv || { cat out/summary.csv >&2; fail "the broken model is not reported failed with its file named"; }
grep -q '"failed":[[:space:]]*1$' out/summary.json || fail "summary.json does not count one failure"
[ "$(wc -l <run1.txt)" -ge "$total" ] || fail "one line per model expected on stdout"
for m in "$src"/tests/data/*.onnx; do
    base=$(basename "$m" .onnx)
    for r in p50 p80 ch25; do
        for f in report.json report.md report.html; do
            [ -s "out/$base-$r.report/$f" ] || fail "missing out/$base-$r.report/$f"
        done
        [ -s "out/$base-$r.onnx" ] || fail "missing out/$base-$r.onnx"
    done
done
[ ! -e out/broken.onnx ] || fail "the broken model left an output"
ls out | grep -q 'tmp' && fail "temporary files left in out/"

rc=0
"$joule" batch manifest.json --jobs 2 --threads 1 --no-latency --resume >run2.txt 2>err2.txt || rc=$?
[ "$rc" = 1 ] || fail "resume run: exit status $rc, want 1"
skipped=$(grep -c ',skipped,' out/summary.csv || true)
[ "$skipped" = "$n" ] || { cat out/summary.csv >&2; fail "resume skipped $skipped of $n"; }
grep -q ',broken,failed,' out/summary.csv || fail "resume lost the broken model's failure"

: >shards.txt
for k in 0 1 2; do
    "$joule" batch manifest.json --shard "$k/3" --dry-run >>shards.txt
done
[ "$(wc -l <shards.txt)" = "$total" ] || fail "shards list $(wc -l <shards.txt) models, want $total"
[ -z "$(cut -d' ' -f1 shards.txt | sort -n | uniq -d)" ] || fail "a model is in two shards"
grep -q '^1 ' shards.txt || fail "model 1 in no shard"

echo "check_batch: $total models ($n done, 1 failed as it should), resume and shards: 1 passed, 0 failed"
