"""Checks `joule compress` outputs against other tools.

For every fixture in tests/data (mlp, cnn, mobile, transformer) and a set of option
combinations (unstructured per layer and global, 2:4, channels with and without cleanup,
sparse storage), this compresses the model with the joule binary, then
  * onnx.checker.check_model(full_check=True) must accept it (sparse storage
    included: see below),
  * ONNX Runtime for Node must load it and run the 64 test images, and its logits must
    match joule's engine (`joule run`) within 1e-3,
and prints the top-1 agreement with the labels for both, so the numbers in the report can
be reproduced.

Sparse storage writes each mostly-zero weight as a Constant node whose sparse_value holds it
(COO, int64 indices): full_check accepts that, and ONNX Runtime loads and runs it. (A graph
sparse_initializer, the other standard form, runs in ONNX Runtime but onnx 1.12's full_check
rejects it: it types the value as sparse_tensor(float), which no dense operator input takes.)

Run with Debian's /usr/bin/python3 (onnx, numpy). Exit 77 (skipped) when node, ONNX
Runtime for Node or python3-onnx is missing.

usage: check_compress.py JOULE_BINARY SOURCE_DIR
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

ORT_JS = r"""
const fs = require('fs');
const ort = require(process.argv[2]);
(async () => {
  const [model, input, n, output] = process.argv.slice(3);
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const s = await ort.InferenceSession.create(model);
  const t = new ort.Tensor('float32', x, [Number(n), 1, 28, 28]);
  const out = await s.run({[s.inputNames[0]]: t});
  const y = out[s.outputNames[0]];
  fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(JSON.stringify(y.dims));
})().catch(e => { console.error(String(e).split('\n')[0]); process.exit(1); });
"""

OPTIONS = [
    ["--prune", "0.5"],
    ["--prune", "0.6", "--prune-scope", "global"],
    ["--prune-pattern", "2:4", "--prune", "0.5"],
    ["--prune-channels", "0.3"],
    ["--prune-channels", "0.3", "--no-cleanup", "--channel-norm", "l2"],
    ["--prune-channels", "0.3", "--prune", "0.8", "--sparse-storage"],
]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    joule, src = sys.argv[1], sys.argv[2]
    try:
        import numpy as np
        import onnx
    except ImportError as e:
        print(f"skip: {e}")
        return SKIP
    node = shutil.which("node")
    ort_dir = os.path.join(src, "tools", "node", "node_modules", "onnxruntime-node")
    if not node or not os.path.isdir(ort_dir):
        print("skip: node or onnxruntime-node is not installed")
        return SKIP

    data = os.path.join(src, "tests", "data")
    x = np.load(os.path.join(data, "fmnist_test64.npy")).astype(np.float32)
    labels = np.load(os.path.join(data, "fmnist_test64_labels.npy"))
    failures = []
    tmp = tempfile.mkdtemp(prefix="joule-compress-interop-")
    try:
        js = os.path.join(tmp, "ort.js")
        with open(js, "w") as f:
            f.write(ORT_JS)
        raw = os.path.join(tmp, "x.f32")
        x.tofile(raw)
        npy = os.path.join(data, "fmnist_test64.npy")
        fixtures = [n for n in ("mlp", "cnn", "mobile", "transformer")
                    if os.path.exists(os.path.join(data, n + ".onnx"))]
        for name in fixtures:
            model = os.path.join(data, name + ".onnx")
            for k, opts in enumerate(OPTIONS):
                label = f"{name} {' '.join(opts)}"
                out = os.path.join(tmp, f"{name}_{k}.onnx")
                report = os.path.join(tmp, f"{name}_{k}.json")
                r = subprocess.run([joule, "compress", model, "-o", out, "--report", report]
                                   + opts, capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{label}: joule compress: {r.stderr.strip()}")
                    continue
                rep = json.load(open(report))
                g = onnx.load(out).graph
                n_sparse = sum(1 for n in g.node if n.op_type == "Constant" and
                               any(a.name == "sparse_value" for a in n.attribute))
                if "--sparse-storage" in opts and (n_sparse == 0 or g.sparse_initializer):
                    failures.append(f"{label}: expected Constant sparse_value weights, got "
                                    f"{n_sparse} (and {len(g.sparse_initializer)} "
                                    "sparse_initializer)")
                    continue
                try:
                    onnx.checker.check_model(onnx.load(out), full_check=True)
                except Exception as e:  # noqa: BLE001 - any checker failure is a finding
                    failures.append(f"{label}: onnx.checker: {str(e).splitlines()[0]}")
                    continue
                note = f"full_check ok ({n_sparse} sparse Constant weights)" if n_sparse \
                    else "full_check ok"
                y_ort = os.path.join(tmp, "y.f32")
                r = subprocess.run([node, js, ort_dir, out, raw, str(len(x)), y_ort],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{label}: ONNX Runtime: {r.stderr.strip()}")
                    continue
                ort_logits = np.fromfile(y_ort, dtype=np.float32).reshape(len(x), -1)
                odir = os.path.join(tmp, "run")
                os.makedirs(odir, exist_ok=True)
                r = subprocess.run([joule, "run", out, "--input", f"input={npy}",
                                    "--output-dir", odir], capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"{label}: joule run: {r.stderr.strip()}")
                    continue
                joule_logits = np.load(os.path.join(odir, "logits.npy"))
                diff = float(np.abs(joule_logits - ort_logits).max())
                acc_ort = float((ort_logits.argmax(1) == labels).mean())
                acc_joule = float((joule_logits.argmax(1) == labels).mean())
                p0, p1 = rep["input"]["params"], rep["output"]["params"]
                m0, m1 = rep["input"]["macs"], rep["output"]["macs"]
                f0, f1 = rep["input"]["file_bytes"], rep["output"]["file_bytes"]
                print(f"{label:58s} params {p0}->{p1} MACs {m0}->{m1} file {f0}->{f1} "
                      f"sparsity {rep['output']['weight_sparsity']:.3f} top1@64 ort "
                      f"{acc_ort:.3f} joule {acc_joule:.3f} |diff| {diff:.1e}; {note}")
                if not diff <= 1e-3:
                    failures.append(f"{label}: ONNX Runtime and joule differ by {diff}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
