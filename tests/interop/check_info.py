#!/usr/bin/python3
"""tests/interop/check_info.py: `joule info --json` on every fixture is valid JSON whose parameter
count, weight bytes and node counts equal what python3-onnx counted from the exported file
(tests/data/fixtures.json, written by tools/make_fixtures.py); broken invocations fail with one
line and the documented exit codes. Usage: check_info.py JOULE SOURCE_DIR"""
import json
import os
import subprocess
import sys


def run(args):
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def main():
    joule, src = sys.argv[1], sys.argv[2]
    data = os.path.join(src, "tests", "data")
    with open(os.path.join(data, "fixtures.json")) as f:
        fixtures = json.load(f)["models"]
    failures = 0
    for name, want in sorted(fixtures.items()):
        r = run([joule, "info", "--json", os.path.join(data, name)])
        if r.returncode != 0:
            print(f"{name}: exit {r.returncode}: {r.stderr.strip()}")
            failures += 1
            continue
        got = json.loads(r.stdout)  # raises on invalid JSON: the test fails
        totals = got["totals"]
        checks = [("params", totals["params"], want["param_count"]),
                  ("bytes", totals["bytes"], want["weight_bytes"]),
                  ("nodes", totals["nodes"], want["node_count"]),
                  ("nodes_by_op", got["nodes_by_op"], want["op_counts"])]
        for what, have, expect in checks:
            if have != expect:
                print(f"{name}: {what} {have} != {expect} (fixtures.json)")
                failures += 1
        print(f"{name}: {totals['params']} params, {totals['macs']} MACs, {len(got['layers'])} layers")
    # bad invocations: one line on stderr, exit 1 for failed work and 2 for usage
    for args, code in ([["info", os.path.join(data, "no-such-model.onnx")], 1],
                       [["info", os.path.join(data, "fmnist_test64.npy")], 1],
                       [["info"], 2], [["info", "--bogus", "x.onnx"], 2],
                       [["info", "--input-shape", "input=1x-3x28", "x.onnx"], 2]):
        r = run([joule] + args)
        lines = r.stderr.strip().splitlines()
        if r.returncode != code or len(lines) != 1 or r.stdout:
            print(f"joule {' '.join(args)}: exit {r.returncode} (want {code}), stderr {lines!r}")
            failures += 1
    print(f"info: {len(fixtures) * 4 + 5 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
