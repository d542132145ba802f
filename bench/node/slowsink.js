'use strict';
// Memory while a file is piped into a sink slower than the file: the same
// work as Go's BenchmarkSlowSink/Pipeline-HWM16KiB.
//
// usage: node slowsink.js [src=/tmp/bench-src-1g.bin] [size=1G] [hwm=16K]
//   pipeline(fs.createReadStream(src), Writable{highWaterMark: hwm}); the
//   Writable's write() copies each chunk into a fixed 64 KiB Buffer, counts it,
//   and calls back via setImmediate, or via setTimeout(cb, 1) each time another
//   1 MiB has been received (about 1 ms of sleep per MiB, as the Go sink),
//   which caps it near 1 GB/s, slower than reading a cached file.
// src is created (untimed) if it is missing or not `size` bytes.
// heap_peak_MiB (V8 heapUsed, sampled at every write() of the sink and at the
// end) is the figure; ext_peak_MiB is the same for process.memoryUsage()'s
// arrayBuffers, where Node keeps Buffer contents (not counted in heapUsed).
// ops = chunks the sink got.
const fs = require('fs');
const crypto = require('crypto');
const { Writable, pipeline } = require('stream');
const { sample, now, parseSize, report, fail } = require('./common');

const src = process.argv[2] || '/tmp/bench-src-1g.bin';
const size = parseSize(process.argv[3] || '1G');
const hwm = parseSize(process.argv[4] || '16K');
const EVERY = 1 << 20;

function sizeOf(path) {
  try { return fs.statSync(path).size; } catch { return -1; }
}

if (sizeOf(src) !== size) {
  const block = crypto.randomBytes(1 << 20);
  const fd = fs.openSync(src, 'w');
  for (let left = size; left > 0; left -= block.length) {
    fs.writeSync(fd, block, 0, Math.min(left, block.length));
  }
  fs.closeSync(fd);
}

const dst = Buffer.alloc(64 * 1024);
let received = 0;
let chunks = 0;
const sink = new Writable({
  highWaterMark: hwm,
  write(chunk, encoding, cb) {
    sample();
    chunks++;
    const before = received;
    for (let off = 0; off < chunk.length; off += dst.length) {
      received += chunk.copy(dst, 0, off, Math.min(off + dst.length, chunk.length));
    }
    const sleeps = Math.floor(received / EVERY) - Math.floor(before / EVERY);
    if (sleeps > 0) setTimeout(cb, sleeps);
    else setImmediate(cb);
  },
});

const t0 = now();
pipeline(fs.createReadStream(src), sink, (err) => {
  const t1 = now();
  if (err) fail(String(err));
  if (received !== size) fail(`received ${received} bytes, want ${size}`);
  report(`slowsink-hwm${hwm / 1024}K`, chunks, size, t0, t1, `hwm=${sink.writableHighWaterMark}`);
});
