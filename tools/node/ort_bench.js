#!/usr/bin/env node
// tools/node/ort_bench.js: the ONNX Runtime side of tools/bench-engine; mirrors
// `bench_engine run` (tools/bench/bench_engine.c) and prints the same key=value lines.
//
//   node tools/node/ort_bench.js MODEL IMAGES.npy --batch B --threads T [--runs N] [--warmup W]
//        [--warmup-ms MS] [--labels LABELS.npy]
//
// Session: intraOpNumThreads T, interOpNumThreads 1, graphOptimizationLevel 'all', sequential
// execution, CPU provider. Runs call the native binding synchronously (see ort_session.js).
// cpu_s is process CPU time (all threads, process.cpuUsage) per timed run; peak_rss_bytes is
// process.resourceUsage().maxRSS; base_rss_bytes the same before the session
// was created (node, onnxruntime-node and the images already loaded). Exit 77: ORT missing.
'use strict';
const { readNpy } = require('./npy');
const { loadOrt, openSession, ortVersion } = require('./ort_session');

function usage(msg) {
  if (msg) console.error(`ort_bench: ${msg}`);
  console.error('usage: ort_bench.js MODEL IMAGES.npy --batch B --threads T [--runs N] ' +
    '[--warmup W] [--warmup-ms MS] [--labels L.npy]');
  process.exit(2);
}

function count(flag, v, lo) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo) usage(`${flag} wants an integer >= ${lo}, got '${v}'`);
  return n;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) usage();
  const o = {
    model: args[0], images: args[1], batch: 1, threads: 1, runs: 200, warmup: 20, warmupMs: 250,
  };
  for (let i = 2; i < args.length; i += 2) {
    if (i + 1 >= args.length) usage(`${args[i]} needs a value`);
    const v = args[i + 1];
    switch (args[i]) {
      case '--batch': o.batch = count('--batch', v, 1); break;
      case '--threads': o.threads = count('--threads', v, 1); break;
      case '--runs': o.runs = count('--runs', v, 1); break;
      case '--warmup': o.warmup = count('--warmup', v, 0); break;
      case '--warmup-ms': o.warmupMs = count('--warmup-ms', v, 0); break;
      case '--labels': o.labels = v; break;
      default: usage(`unknown option '${args[i]}'`);
    }
  }
  const ort = loadOrt();
  if (!ort) {
    console.error('ort_bench: onnxruntime-node is not installed (run tools/install-node-deps)');
    process.exit(77);
  }
  const images = readNpy(o.images);
  const labels = o.labels ? readNpy(o.labels) : null;
  if (images.dtype !== 'float32' || images.shape.length < 1 || images.shape[0] < 1) {
    throw new Error(`${o.images}: want float32 with at least one item`);
  }
  const nItems = images.shape[0];
  const itemLen = images.data.length / nItems;
  const dims = [o.batch, ...images.shape.slice(1)];
  const nX = nItems % o.batch === 0 ? nItems / o.batch : nItems;
  const xs = [];
  for (let i = 0; i < nX; i++) {
    const buf = new Float32Array(o.batch * itemLen);
    for (let j = 0; j < o.batch; j++) {
      const src = ((i * o.batch + j) % nItems) * itemLen;
      buf.set(images.data.subarray(src, src + itemLen), j * itemLen);
    }
    xs.push(buf);
  }
  const baseRss = process.resourceUsage().maxRSS * 1024;

  const t0 = process.hrtime.bigint();
  const s = await openSession(ort, o.model, o.threads, 'all');
  const tCreate = Number(process.hrtime.bigint() - t0) / 1e9;
  if (s.inputNames.length !== 1) throw new Error(`${o.model}: ${s.inputNames.length} inputs`);
  const name = s.inputNames[0];
  const feeds = xs.map((x) => ({ [name]: new ort.Tensor('float32', x, dims) }));

  // warm-up: at least o.warmup runs and o.warmupMs milliseconds (as bench_engine does)
  let warm = 0;
  const w0 = process.hrtime.bigint();
  while (warm < o.warmup || Number(process.hrtime.bigint() - w0) / 1e6 < o.warmupMs) {
    const f = feeds[warm % nX];
    if (s.runSync) s.runSync(f); else await s.run(f);
    warm++;
  }
  const times = [];
  const cpu0 = process.cpuUsage();
  if (s.runSync) {
    for (let r = 0; r < o.runs; r++) {
      const f = feeds[(warm + r) % nX];
      const a = process.hrtime.bigint();
      s.runSync(f);
      const b = process.hrtime.bigint();
      times.push(Number(b - a) / 1e9);
    }
  } else {
    for (let r = 0; r < o.runs; r++) {
      const f = feeds[(warm + r) % nX];
      const a = process.hrtime.bigint();
      await s.run(f);
      const b = process.hrtime.bigint();
      times.push(Number(b - a) / 1e9);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuPerRun = (cpu.user + cpu.system) / 1e6 / o.runs;
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  times.sort((a, b) => a - b);
  const n = times.length;
  const median = n % 2 ? times[(n - 1) / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  const out = [
    'engine=ort',
    `ort_version=${ortVersion(ort)}`,
    `ort_call=${s.viaBinding ? 'binding-sync' : 'InferenceSession.run'}`,
    `batch=${o.batch}`, `threads=${o.threads}`, `runs=${o.runs}`, `warmup=${warm}`,
    `median_s=${median.toFixed(9)}`, `min_s=${times[0].toFixed(9)}`, `mean_s=${mean.toFixed(9)}`,
    `cpu_s=${cpuPerRun.toFixed(9)}`,
    `create_s=${tCreate.toFixed(6)}`,
    `peak_rss_bytes=${process.resourceUsage().maxRSS * 1024}`,
    `base_rss_bytes=${baseRss}`,
  ];
  if (labels) {
    const res = await s.run(feeds[0]);
    const y = res[s.outputNames[0]];
    const k = y.data.length / o.batch;
    const nl = Math.min(labels.data.length, o.batch);
    let correct = 0;
    for (let i = 0; i < nl; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (y.data[i * k + j] > y.data[i * k + best]) best = j;
      if (Number(labels.data[i]) === best) correct++;
    }
    out.push(`top1=${correct}/${nl}`);
  }
  console.log(out.join('\n'));
  s.release();
}

main().catch((e) => {
  console.error(`ort_bench: ${e.message}`);
  process.exit(1);
});
