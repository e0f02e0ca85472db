// tests/interop/ort_run.js: runs ONNX models in ONNX Runtime (node) on a .npy batch of images and
// prints, per model, one JSON line with the top-1 class of every image, so a caller can compare
// with joule's engine; errors (load or run) print {"model":..., "error":...} and exit 1.
//   node ort_run.js IMAGES.npy MODEL.onnx [MODEL.onnx ...] [--f16]
// --f16 feeds the images as float16 (models converted without keep_io_types); float16 outputs
// are read back as float.
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

// IEEE half from float (round to nearest even) and back.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  let exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}
function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

async function main() {
  const args = process.argv.slice(2);
  const images = readNpy(args[0]);
  const models = args.slice(1).filter((a) => a.endsWith('.onnx'));
  const half = args.includes('--f16');
  const ort = loadOrt();
  let failed = false;
  for (const m of models) {
    try {
      const opts = { graphOptimizationLevel: 'all', logSeverityLevel: 3 };
      const s = await ort.InferenceSession.create(m, opts);
      const name = s.inputNames[0];
      const x = half
        ? new ort.Tensor('float16', Uint16Array.from(images.data, toHalf), images.shape)
        : new ort.Tensor('float32', images.data, images.shape);
      const r = await s.run({ [name]: x });
      let y = r[s.outputNames[0]];
      if (y.type === 'float16' && half) {
        const raw = y.data;
        y = { data: raw instanceof Uint16Array ? Float32Array.from(raw, fromHalf) : Float32Array.from(raw) };
      } else if (y.type !== 'float32') {
        throw new Error('output is ' + y.type + ', expected float32');
      }
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
