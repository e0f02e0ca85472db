#!/usr/bin/python3
"""tests/interop/check_roundtrip.py: onnx.checker must accept every file joule saved whose
original it accepted. Runs `resave` over the backend test data, then checks both sides with
Debian's python3-onnx. Usage: check_roundtrip.py RESAVE_BINARY TESTDATA_ROOT"""
import os
import subprocess
import sys
import tempfile

try:
    import onnx
except ImportError:
    print("check_roundtrip: python3-onnx is not installed; skipping")
    sys.exit(77)


def main():
    resave, root = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([resave, root, out], check=True)
        accepted = rejected_after = 0
        failures = []
        for name in sorted(os.listdir(out)):
            suite, test = name[:-len(".onnx")].split("__", 1)
            original = os.path.join(root, suite, test, "model.onnx")
            try:
                onnx.checker.check_model(original)
            except Exception:
                continue  # the checker rejects the original too: nothing to compare
            accepted += 1
            try:
                onnx.checker.check_model(os.path.join(out, name))
            except Exception as e:
                rejected_after += 1
                failures.append(f"{suite}/{test}: {str(e).splitlines()[0]}")
        for f in failures[:20]:
            print("rejected after save:", f)
        print(f"checker: {accepted - rejected_after} passed, {rejected_after} failed")
        return 1 if rejected_after or accepted < 1000 else 0


if __name__ == "__main__":
    sys.exit(main())
