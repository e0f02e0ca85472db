// tools/node/npy.js: a tiny NumPy .npy reader/writer for the ONNX Runtime runners (ort_run.js,
// ort_bench.js). C-order arrays of float32 ('<f4') and int64 ('<i8') only, format versions 1-3
// on read, version 1 on write; anything else is an error naming the file.
'use strict';
const fs = require('fs');

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

const DTYPES = {
  '<f4': { name: 'float32', size: 4, Array: Float32Array },
  '<i8': { name: 'int64', size: 8, Array: BigInt64Array },
};

function fail(path, msg) {
  throw new Error(`${path}: ${msg}`);
}

// Returns {dtype: 'float32'|'int64', shape: number[], data: Float32Array|BigInt64Array}.
function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail(path, 'not a .npy file');
  const major = buf[6];
  let hlen;
  let off;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    off = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail(path, 'truncated header');
    hlen = buf.readUInt32LE(8);
    off = 12;
  } else {
    fail(path, `unsupported .npy version ${major}`);
  }
  if (off + hlen > buf.length) fail(path, 'truncated header');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', off, off + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shapeM) fail(path, `malformed header ${JSON.stringify(header)}`);
  if (order[1] !== 'False') fail(path, 'Fortran-order arrays are not supported');
  const dt = DTYPES[descr[1]];
  if (!dt) fail(path, `dtype '${descr[1]}' not supported (float32 '<f4' and int64 '<i8' only)`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length).map((s) => {
    if (!/^\d+$/.test(s)) fail(path, `bad dim '${s}'`);
    return Number(s);
  });
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * dt.size)) fail(path, 'array too large');
  const start = off + hlen;
  if (buf.length - start !== count * dt.size) {
    fail(path, `data is ${buf.length - start} bytes, shape [${shape}] needs ${count * dt.size}`);
  }
  // Copy so the typed array is aligned whatever the header length.
  const bytes = new Uint8Array(count * dt.size);
  buf.copy(bytes, 0, start);
  return { dtype: dt.name, shape, data: new dt.Array(bytes.buffer) };
}

// Writes a float32 or int64 typed array of the given shape (version 1 header, 64-byte aligned).
function writeNpy(path, dtype, shape, data) {
  const entry = Object.entries(DTYPES).find(([, d]) => d.name === dtype);
  if (!entry) fail(path, `cannot write dtype ${dtype} (float32 and int64 only)`);
  const [descr, dt] = entry;
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) fail(path, `${data.length} elements for shape [${shape}]`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  if (header.length > 65535) fail(path, 'header too long');
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, count * dt.size);
  const tmp = `${path}.tmp${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
  fs.renameSync(tmp, path);
}

module.exports = { readNpy, writeNpy };
