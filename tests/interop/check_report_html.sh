#!/bin/sh
# tests/interop/check_report_html.sh JOULE SOURCE_DIR: renders a real report.html (the cnn
# fixture against a 50%-pruned copy, accuracy on the 64 bundled test images) in headless
# Chromium and checks the screenshot is not blank: many colours, enough ink, and the solid fills
# of the chart bars present, so the inline SVG was drawn. Skipped (77) without /usr/bin/chromium
# or /usr/bin/python3. JOULE_REPORT_PNG=path keeps the screenshot (docs/report.png is made so).
set -eu
joule=$1
src=$2
case $joule in /*) ;; *) joule=$PWD/$joule ;; esac
[ -f "$src/tests/data/cnn.onnx" ] && [ -f "$src/tests/data/fmnist_test64.npy" ] ||
    { echo "$(basename "$0"): no fixture models in $src/tests/data, skipped"; exit 77; }
chromium=/usr/bin/chromium
[ -x "$chromium" ] || { echo "check_report_html: no $chromium, skipped"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "check_report_html: no /usr/bin/python3, skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$joule" compress "$src/tests/data/cnn.onnx" -o "$tmp/cnn-pruned50.onnx" --prune 0.5 >/dev/null
"$joule" report "$src/tests/data/cnn.onnx" "$tmp/cnn-pruned50.onnx" \
    --data "$src/tests/data/fmnist_test64.npy" --threads 1 --trials 9 \
    --energy-window 0.1 --energy-trials 3 \
    --title "cnn.onnx pruned to 50%: compression report" -o "$tmp/report" >/dev/null

# chromium writes the screenshot and exits; a timeout guards against a hang
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --user-data-dir="$tmp/profile" \
    --screenshot="$tmp/out.png" --window-size=1200,1600 "file://$tmp/report/report.html" \
    >"$tmp/chromium.log" 2>&1 || { cat "$tmp/chromium.log" >&2; echo "check_report_html: chromium failed" >&2; exit 1; }
[ -s "$tmp/out.png" ] || { cat "$tmp/chromium.log" >&2; echo "check_report_html: no screenshot" >&2; exit 1; }

# the "after" bars (#1a7f72), the "before" bars (#9aa0a6) and float layers (#4285f4)
/usr/bin/python3 "$(dirname "$0")/png_check.py" "$tmp/out.png" 26,127,114 154,160,166 66,133,244
if [ -n "${JOULE_REPORT_PNG:-}" ]; then
    cp "$tmp/out.png" "$JOULE_REPORT_PNG"
fi
echo "check_report_html: 1 passed, 0 failed"
