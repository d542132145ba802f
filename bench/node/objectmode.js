'use strict';
// Object mode: many small objects into an objectMode Writable whose only
// sink is _writev (batches), completing via process.nextTick (Node's form
// of a sink that completes elsewhere), with one shared per-item callback
// (an ack per item, no closure per write); write() return value respected
// (stop on false, resume on 'drain'), timed until 'finish'.
// The Go side is BenchmarkObjectMode (bench/objectmode_test.go).
//
// usage: node objectmode.js [N=2000000] [highWaterMark=500]
//   highWaterMark is in objects. Node has no batch limit: _writev gets
//   everything buffered, so the mark also bounds a batch (at most
//   highWaterMark - 1 objects, the one in flight aside); 500 matches the
//   Go side's MaxBatch 500.
const { Writable } = require('stream');
const { sample, now, parseSize, report, fail } = require('./common');

const N = parseSize(process.argv[2] || '2000000');
const hwm = parseSize(process.argv[3] || '500');
const objectBytes = 24; // the Go struct: two int64 and a float64

let inserted = 0;
let sum = 0;
let batches = 0;
let largest = 0;
const s = new Writable({
  objectMode: true,
  highWaterMark: hwm,
  writev(chunks, cb) {
    for (let i = 0; i < chunks.length; i++) sum += chunks[i].chunk.val;
    inserted += chunks.length;
    batches++;
    if (chunks.length > largest) largest = chunks.length;
    process.nextTick(cb);
  },
});

let acked = 0;
let failed = 0;
function ack(err) {
  if (err) failed++;
  acked++;
}

let k = 0;
let drains = 0;
let t0;

function run() {
  while (k < N) {
    k++;
    if ((k & 0xffff) === 0) sample();
    if (!s.write({ id: k, ts: k, val: 1 }, ack)) return; // resumed by 'drain'
  }
  s.removeListener('drain', run);
  s.end();
}

s.on('drain', () => drains++);
s.on('drain', run);
s.on('finish', () => {
  const t1 = now();
  if (inserted !== N || sum !== N) fail(`inserted ${inserted} objects (sum ${sum}), want ${N}`);
  // 'finish' comes after every write callback.
  if (acked !== N || failed !== 0) fail(`${acked} acks (${failed} failed), want ${N}`);
  report(`objectmode-writev-hwm${hwm}${N !== 2e6 ? `-n${N}` : ''}`, N, N * objectBytes, t0, t1,
         `hwm=${hwm} drains=${drains} batches=${batches} mean_batch=${(N / batches).toFixed(1)} largest_batch=${largest}`);
});

t0 = now();
run();
