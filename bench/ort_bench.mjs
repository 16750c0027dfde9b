// ONNX Runtime runner of the benchmark harness (bench/harness.py).
//
//   node bench/ort_bench.mjs MODEL.onnx INPUT.npy --threads N --warmup W --runs R [--spin]
//                            [--output OUT.npy] [--serve]
//
// Session options as in the peers' measurements: graph optimization 'all', intra-op threads N,
// inter-op threads 1, sequential execution, and the intra-op pool's spinning off
// (session.intra_op.allow_spinning = '0'; --spin keeps ONNX Runtime's default spinning).
// Times `await session.run()` only. Prints one JSON line: {"engine", "version", "times_ms",
// "load_ms", "peak_rss_mb", ...}. --output writes the first output as a float32 .npy.
// --serve: as `anvil bench --serve` (after the warm-up print {"ready":true,...}; for each stdin
// line 'run N' do N timed runs and print {"times_ms":[...]}; at 'quit' or end of input print
// the report of all of them).
import readline from 'node:readline';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ort = require(path.join(here, 'node_modules', 'onnxruntime-node'));
const ortVersion = JSON.parse(
  fs.readFileSync(path.join(here, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;

function usage(msg) {
  process.stderr.write(`ort_bench: ${msg}\n` +
    'usage: node ort_bench.mjs MODEL.onnx INPUT.npy --threads N --warmup W --runs R [--spin] [--output OUT.npy]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
const pos = [];
const opt = { threads: 1, warmup: 3, runs: 20, spin: false, output: '', serve: false };
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  if (a === '--spin') opt.spin = true;
  else if (a === '--serve') opt.serve = true;
  else if (['--threads', '--warmup', '--runs', '--output'].includes(a)) {
    if (i + 1 >= args.length) usage(`${a} needs a value`);
    const v = args[++i];
    opt[a.slice(2)] = a === '--output' ? v : Number.parseInt(v, 10);
    if (a !== '--output' && !(opt[a.slice(2)] >= 0)) usage(`bad value for ${a}: ${v}`);
  } else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else pos.push(a);
}
if (pos.length !== 2) usage('expected MODEL.onnx and INPUT.npy');
if (opt.threads < 1 || opt.runs < 1) usage('--threads and --runs must be at least 1');

// A little-endian float32 C-order .npy (what numpy.save writes for float32 arrays).
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${file}: only float32 .npy is supported`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const m = header.match(/'shape':\s*\(([^)]*)\)/);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const off = hstart + hlen;
  for (let i = 0; i < n; ++i) data[i] = buf.readFloatLE(off + 4 * i);
  return { shape, data };
}

function writeNpy(file, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; ++i) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

const t0 = performance.now();
const options = {
  graphOptimizationLevel: 'all',
  intraOpNumThreads: opt.threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  executionProviders: ['cpu'],
};
if (!opt.spin) options.extra = { session: { intra_op: { allow_spinning: '0' } } };
const session = await ort.InferenceSession.create(pos[0], options);
const x = readNpy(pos[1]);
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) };
const loadMs = performance.now() - t0;

let out;
for (let i = 0; i < opt.warmup; ++i) out = await session.run(feeds);
const times = [];
async function timedRun() {
  const a = performance.now();
  out = await session.run(feeds);
  times.push(performance.now() - a);
}
if (opt.serve) {
  process.stdout.write(JSON.stringify({ ready: true, load_ms: loadMs }) + '\n');
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    if (line.trim() === 'quit') break;
    const m = line.trim().match(/^run (\d+)$/);
    if (!m || Number(m[1]) < 1) usage(`--serve: expected 'run N' or 'quit' on stdin, got '${line}'`);
    const start = times.length;
    for (let i = 0; i < Number(m[1]); ++i) await timedRun();
    process.stdout.write(JSON.stringify({ times_ms: times.slice(start) }) + '\n');
  }
  rl.close();
  if (times.length === 0) await timedRun();
  opt.runs = times.length;
} else {
  for (let i = 0; i < opt.runs; ++i) await timedRun();
}
if (opt.output) {
  const y = out[session.outputNames[0]];
  writeNpy(opt.output, y.dims, y.data);
}
process.stdout.write(JSON.stringify({
  engine: 'onnxruntime', version: ortVersion, threads: opt.threads, spin: opt.spin,
  warmup: opt.warmup, runs: opt.runs, times_ms: times, load_ms: loadMs,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
}) + '\n');
