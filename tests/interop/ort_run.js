// tests/interop/ort_run.js: runs ONNX models in ONNX Runtime (node) on a .npy batch of images and
// prints, per model, one JSON line with the top-1 class of every image, so a caller can compare
// with joule's engine; errors (load or run) print {"model":..., "error":...} and exit 1.
//   node ort_run.js IMAGES.npy MODEL.onnx [MODEL.onnx ...] [--logits OUT_PREFIX]
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const here = path.resolve(__dirname, '../../tools/node/node_modules/onnxruntime-node');
  return require(here);
}

// Minimal .npy reader: float32 little-endian, C order.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(file + ': expected <f4 data');
  if (/'fortran_order':\s*True/.test(header)) throw new Error(file + ': Fortran order');
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',')
    .map((s) => s.trim()).filter((s) => s.length).map(Number);
  const off = start + hlen;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + buf.length));
  return { data, shape };
}

async function main() {
  const args = process.argv.slice(2);
  const images = readNpy(args[0]);
  const models = args.slice(1).filter((a) => a.endsWith('.onnx'));
  const ort = loadOrt();
  let failed = false;
  for (const m of models) {
    try {
      const opts = { graphOptimizationLevel: 'all', logSeverityLevel: 3 };
      const s = await ort.InferenceSession.create(m, opts);
      const name = s.inputNames[0];
      const x = new ort.Tensor('float32', images.data, images.shape);
      const r = await s.run({ [name]: x });
      const y = r[s.outputNames[0]];
      if (y.type !== 'float32') throw new Error('output is ' + y.type + ', expected float32');
      const n = images.shape[0];
      const k = y.data.length / n;
      const top1 = [];
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) if (y.data[i * k + j] > y.data[i * k + best]) best = j;
        top1.push(best);
      }
      console.log(JSON.stringify({ model: m, top1, logits: Array.from(y.data) }));
    } catch (e) {
      failed = true;
      console.log(JSON.stringify({ model: m, error: String(e.message).split('\n')[0] }));
    }
  }
  process.exit(failed ? 1 : 0);
}

main();
