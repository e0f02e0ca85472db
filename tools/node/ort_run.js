#!/usr/bin/env node
// tools/node/ort_run.js: runs an ONNX model once with ONNX Runtime (CPU) on .npy inputs and
// writes each output to OUTPUT_DIR/NAME.npy, mirroring `joule run` so the interop test can
// compare the two. Float32 and int64 tensors only.
//
//   node tools/node/ort_run.js MODEL --input NAME=FILE.npy ... --output-dir DIR
//        [--threads N] [--opt all|extended|basic|disabled]
//
// Exit status: 0 ok, 1 error, 2 usage, 77 onnxruntime-node not installed (the test skips).
'use strict';
const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy } = require('./npy');
const { loadOrt, openSession, ortVersion } = require('./ort_session');

function usage(msg) {
  if (msg) console.error(`ort_run: ${msg}`);
  console.error('usage: ort_run.js MODEL --input NAME=FILE.npy ... --output-dir DIR ' +
    '[--threads N] [--opt all|extended|basic|disabled]');
  process.exit(2);
}

// Same rule as joule run: characters other than [A-Za-z0-9._-] become '_'.
function fileName(name) {
  const s = name.replace(/[^A-Za-z0-9._-]/g, '_');
  return s === '' || s === '.' || s === '..' ? 'output' : s;
}

async function main() {
  const args = process.argv.slice(2);
  let model = null;
  let outDir = null;
  let threads = 1;
  let opt = 'all';
  const inputs = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const val = () => {
      if (i + 1 >= args.length) usage(`${a} needs a value`);
      return args[++i];
    };
    if (a === '--input') {
      const v = val();
      const eq = v.indexOf('=');
      if (eq <= 0 || eq === v.length - 1) usage(`--input wants NAME=FILE.npy, got '${v}'`);
      inputs.push({ name: v.slice(0, eq), file: v.slice(eq + 1) });
    } else if (a === '--output-dir') {
      outDir = val();
    } else if (a === '--threads') {
      threads = Number(val());
      if (!Number.isInteger(threads) || threads < 1) usage('--threads wants a count >= 1');
    } else if (a === '--opt') {
      opt = val();
      if (!['all', 'extended', 'basic', 'disabled'].includes(opt)) usage(`bad --opt '${opt}'`);
    } else if (a.startsWith('-')) {
      usage(`unknown option '${a}'`);
    } else if (model) {
      usage('one model only');
    } else {
      model = a;
    }
  }
  if (!model || !outDir) usage('MODEL and --output-dir are required');
  const ort = loadOrt();
  if (!ort) {
    console.error('ort_run: onnxruntime-node is not installed (run tools/install-node-deps)');
    process.exit(77);
  }
  const s = await openSession(ort, model, threads, opt);
  const feeds = {};
  for (const inp of inputs) {
    if (!s.inputNames.includes(inp.name)) {
      throw new Error(`${model}: no graph input '${inp.name}' (inputs: ${s.inputNames.join(', ')})`);
    }
    const x = readNpy(inp.file);
    feeds[inp.name] = new ort.Tensor(x.dtype, x.data, x.shape);
  }
  for (const n of s.inputNames) if (!feeds[n]) throw new Error(`${model}: input '${n}' not given`);
  const out = await s.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  for (const n of s.outputNames) {
    const t = out[n];
    const file = path.join(outDir, `${fileName(n)}.npy`);
    writeNpy(file, t.type, t.dims.map(Number), t.data);
    console.log(`${n} ${t.type} [${t.dims.join(',')}] -> ${file}`);
  }
  s.release();
  if (process.env.ORT_RUN_VERBOSE) {
    console.error(`ort_run: onnxruntime-node ${ortVersion(ort)}, ${threads} thread(s), opt ${opt}`);
  }
}

main().catch((e) => {
  console.error(`ort_run: ${e.message}`);
  process.exit(1);
});
