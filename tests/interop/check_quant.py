"""Quantized fixtures against other tools (run with Debian's /usr/bin/python3, which has onnx).

For every fixture model (tests/data/{mlp,cnn,mobile,transformer}.onnx) and every quantization
joule makes (fp16, int8 dynamic, int8 static QDQ, int8 static QOperator), quant_tool writes the
model; then
  - onnx.checker.check_model(full_check=True) must accept it,
  - ONNX Runtime (node, onnxruntime-node) must load and run it on the 64 test images,
  - ORT's top-1 must agree with joule's engine on at least 63 of the 64 images.

Usage: check_quant.py QUANT_TOOL SOURCE_ROOT
Exits 77 (meson's "skipped") when node or onnxruntime-node is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx

FIXTURES = ["mlp", "cnn", "mobile", "transformer"]
TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
MIN_AGREE = 63  # of 64


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip() or p.stdout.strip()))
    return p.stdout


def main():
    tool, root = sys.argv[1], sys.argv[2]
    node = shutil.which("node")
    ort_dir = os.path.join(root, "tools", "node", "node_modules", "onnxruntime-node")
    if not node or not os.path.isdir(ort_dir):
        print("skip: node or onnxruntime-node missing (tools/install-node-deps)")
        return 77
    data = os.path.join(root, "tests", "data")
    images = os.path.join(data, "fmnist_test64.npy")
    calib = [TRAIN, "--limit", "256"] if os.path.exists(TRAIN) else [images]
    runner = os.path.join(root, "tests", "interop", "ort_run.js")
    failures = []
    checked = 0
    with tempfile.TemporaryDirectory(prefix="joule-quant-") as tmp:
        models = []
        for name in FIXTURES:
            src = os.path.join(data, name + ".onnx")
            if not os.path.exists(src):
                continue
            clean = os.path.join(tmp, name + "_clean.onnx")
            run([tool, "cleanup", src, clean])
            variants = {
                "fp16": ("fp16", []),
                "fp16_io16": ("fp16", ["--no-keep-io"]),
                "dynamic": ("dynamic", []),
                "qdq": ("static", calib),
                "qdq_s8": ("static", calib + ["--s8"]),
                "qoperator": ("static", calib + ["--qoperator"]),
            }
            for kind, (mode, extra) in variants.items():
                out = os.path.join(tmp, "%s_%s.onnx" % (name, kind))
                try:
                    run([tool, mode, clean, out] + extra)
                except RuntimeError as e:
                    failures.append("%s %s: quantization failed: %s" % (name, kind, e))
                    continue
                models.append((name, kind, out))
        for name, kind, path in models:
            label = "%s %s" % (name, kind)
            try:
                onnx.checker.check_model(onnx.load(path), full_check=True)
            except Exception as e:  # noqa: BLE001 - any checker complaint is a failure
                failures.append("%s: onnx.checker: %s" % (label, str(e).splitlines()[0]))
                continue
            npy = path + ".logits.npy"
            try:
                run([tool, "logits", path, images, npy])
            except RuntimeError as e:
                failures.append("%s: joule's engine: %s" % (label, e))
                continue
            ours = np.load(npy)
            if ours.dtype != np.float32:
                ours = ours.astype(np.float32)
            half = ["--f16"] if kind.endswith("io16") else []
            p = subprocess.run([node, runner, images, path] + half, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            if not lines:
                failures.append("%s: ONNX Runtime printed nothing: %s" % (label, p.stderr.strip()))
                continue
            res = json.loads(lines[0])
            if "error" in res:
                failures.append("%s: ONNX Runtime: %s" % (label, res["error"]))
                continue
            theirs = np.array(res["top1"])
            agree = int((ours.argmax(axis=1) == theirs).sum())
            diff = float(np.abs(np.array(res["logits"], dtype=np.float32).reshape(ours.shape)
                                - ours).max())
            print("%-24s ORT/joule top-1 agreement %2d/64, max logit difference %.4f"
                  % (label, agree, diff))
            checked += 1
            if agree < MIN_AGREE:
                failures.append("%s: ORT and joule agree on %d/64 images" % (label, agree))
    for f in failures:
        print("FAIL " + f)
    print("quant interop: %d models checked, %d failures" % (checked, len(failures)))
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
