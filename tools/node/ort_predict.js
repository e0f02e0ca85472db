// tools/node/ort_predict.js: the top-1 class ONNX Runtime (onnxruntime-node) gives every image of
// a float32 .npy batch, written as an int64 .npy in the same order, so that a caller can measure
// ORT's accuracy and its per-image agreement with joule (tools/bench-compress-accuracy).
//   node ort_predict.js MODEL.onnx IMAGES.npy OUT.npy [--batch N] [--threads N]
// Images go through in batches of N (default 64, as in `joule eval`; the last batch is smaller,
// so the model needs a dynamic batch dimension unless N divides the count). Errors print one
// line and exit 1.
'use strict';
const { loadOrt, openSession } = require('./ort_session');
const { readNpy, writeNpy } = require('./npy');

function usage() {
  console.error('usage: node ort_predict.js MODEL.onnx IMAGES.npy OUT.npy [--batch N] [--threads N]');
  process.exit(2);
}

function argmax(data, off, k) {
  let best = 0;
  for (let j = 1; j < k; j++) if (data[off + j] > data[off + best]) best = j;
  return best;
}

async function main() {
  const args = process.argv.slice(2);
  const pos = [];
  let batch = 64, threads = 1;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--batch' || args[i] === '--threads') {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 1) usage();
      if (args[i - 1] === '--batch') batch = v; else threads = v;
    } else {
      pos.push(args[i]);
    }
  }
  if (pos.length !== 3) usage();
  const [modelPath, imagesPath, outPath] = pos;
  const ort = loadOrt();
  if (!ort) throw new Error('onnxruntime-node is not installed (run tools/install-node-deps)');
  const images = readNpy(imagesPath);
  if (images.dtype !== 'float32') throw new Error(`${imagesPath}: expected float32 images`);
  const n = images.shape[0];
  const per = images.data.length / n;
  const s = await openSession(ort, modelPath, threads);
  const preds = new BigInt64Array(n);
  for (let start = 0; start < n; start += batch) {
    const m = Math.min(batch, n - start);
    const x = new ort.Tensor('float32', images.data.subarray(start * per, (start + m) * per),
      [m, ...images.shape.slice(1)]);
    const out = await s.run({ [s.inputNames[0]]: x });
    const y = out[s.outputNames[0]];
    if (y.type !== 'float32') throw new Error(`${modelPath}: first output is ${y.type}, expected float32`);
    const k = y.data.length / m;
    for (let i = 0; i < m; i++) preds[start + i] = BigInt(argmax(y.data, i * k, k));
  }
  s.release();
  writeNpy(outPath, 'int64', [n], preds);
}

main().catch((e) => {
  console.error('ort_predict: ' + String(e && e.message ? e.message : e).split('\n')[0]);
  process.exit(1);
});
