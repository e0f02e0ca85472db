// tools/node/ort_session.js: opens an ONNX Runtime (onnxruntime-node) CPU session the way the
// interop test and the engine benchmark want it: fixed intra/inter-op thread counts, every graph
// optimization, sequential execution. Runs go through the package's native binding directly
// (synchronous), not through InferenceSession.run, whose Promise + setImmediate wrapper adds
// ~80 us per call on this machine and would unfairly slow ORT's batch-1 latency; if the binding's
// internal layout ever changes we fall back to the public API (and say so via `viaBinding`).
'use strict';
const path = require('path');

const NODE_MODULES = path.join(__dirname, 'node_modules');

// Loads onnxruntime-node from tools/node/node_modules (or the normal resolution path). Returns
// null when it is not installed.
function loadOrt() {
  for (const p of [path.join(NODE_MODULES, 'onnxruntime-node'), 'onnxruntime-node']) {
    try {
      return require(p);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  return null;
}

function loadBinding() {
  for (const p of [path.join(NODE_MODULES, 'onnxruntime-node', 'dist', 'binding'),
    'onnxruntime-node/dist/binding']) {
    try {
      const b = require(p);
      if (b && b.binding && typeof b.binding.InferenceSession === 'function' &&
          typeof b.initOrt === 'function') return b;
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  return null;
}

const TYPE_NAMES = [undefined, 'float32', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64',
  'string', 'bool', 'float16', 'float64', 'uint32', 'uint64'];

function sessionOptions(threads, optLevel) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: optLevel || 'all',
    executionMode: 'sequential',
    executionProviders: ['cpu'],
  };
}

// Opens modelPath. Returns {inputNames, outputNames, inputs: [{name, type, shape}], run(feeds),
// runSync(feeds) | null, release(), viaBinding}. feeds maps input names to ort.Tensor; run
// resolves to a map of output name -> ort.Tensor.
async function openSession(ort, modelPath, threads, optLevel) {
  const opts = sessionOptions(threads, optLevel);
  const b = loadBinding();
  if (b) {
    let raw = null;
    try {
      b.initOrt();
      raw = new b.binding.InferenceSession();
      raw.loadModel(modelPath, opts);
    } catch (e) {
      if (raw) throw e;          // the model failed to load: a real error
      raw = null;                // the binding itself is unusable: use the public API
    }
    if (raw && Array.isArray(raw.inputMetadata) && Array.isArray(raw.outputMetadata)) {
      const inputs = raw.inputMetadata.map((m) => ({
        name: m.name,
        type: TYPE_NAMES[m.type],
        shape: Array.from(m.shape, (d, i) => (d >= 0 ? d : m.symbolicDimensions[i])),
      }));
      const outputNames = raw.outputMetadata.map((m) => m.name);
      const fetches = {};
      for (const n of outputNames) fetches[n] = null;
      const runSync = (feeds) => raw.run(feeds, fetches, {});
      return {
        inputNames: inputs.map((i) => i.name),
        outputNames,
        inputs,
        runSync,
        run: async (feeds) => runSync(feeds),
        release: () => raw.dispose(),
        viaBinding: true,
      };
    }
  }
  const s = await ort.InferenceSession.create(modelPath, opts);
  return {
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    inputs: s.inputNames.map((n, i) => ({
      name: n,
      type: s.inputMetadata && s.inputMetadata[i] ? s.inputMetadata[i].type : undefined,
      shape: s.inputMetadata && s.inputMetadata[i] ? s.inputMetadata[i].shape : undefined,
    })),
    runSync: null,
    run: (feeds) => s.run(feeds),
    release: () => s.release(),
    viaBinding: false,
  };
}

// The ORT version string, or 'unknown'.
function ortVersion(ort) {
  try {
    return require(path.join(NODE_MODULES, 'onnxruntime-node', 'package.json')).version;
  } catch (e) {
    return (ort && ort.env && ort.env.versions && ort.env.versions.node) || 'unknown';
  }
}

module.exports = { loadOrt, openSession, ortVersion, sessionOptions };
