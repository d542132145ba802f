'use strict';
// Shared helpers for the Node anchor benchmarks in this folder.
//
// Every script prints exactly one result line:
//   <name> <ops/s> <MB/s> heap_peak_MiB=<x> rss_peak_MiB=<y> ops=<n> bytes=<b> secs=<t> [extra]
// MB/s is decimal (1 MB = 1e6 bytes), the same unit as Go's `go test -bench` MB/s.
// heap_peak_MiB is V8's heapUsed, sampled (about every 64 Ki operations and at the end),
// so it is a lower bound of the true peak. rss_peak_MiB is the kernel's maxRSS for this
// process (exact; a child process, where one is used, is not included). ext_peak_MiB is
// memoryUsage().arrayBuffers (Buffer contents live there, outside heapUsed), sampled with it.

let heapPeak = 0;
let extPeak = 0;

function sample() {
  const m = process.memoryUsage();
  if (m.heapUsed > heapPeak) heapPeak = m.heapUsed;
  if (m.arrayBuffers > extPeak) extPeak = m.arrayBuffers;
}

function now() {
  return process.hrtime.bigint();
}

// parseSize('16K') -> 16384, '2G' -> 2147483648, '2e6' -> 2000000.
function parseSize(s) {
  const m = /^([0-9.e+]+)([KMG]?)i?B?$/i.exec(String(s));
  if (!m) throw new Error(`bad size: ${s}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase()];
  const v = Number(m[1]) * mult;
  if (!Number.isFinite(v) || v <= 0 || !Number.isInteger(v)) throw new Error(`bad size: ${s}`);
  return v;
}

function report(name, ops, bytes, t0, t1, extra = '') {
  sample();
  const secs = Number(t1 - t0) / 1e9;
  const rssPeak = process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
  const fields = [
    name,
    (ops / secs).toFixed(0),
    (bytes / secs / 1e6).toFixed(1),
    `heap_peak_MiB=${(heapPeak / 1048576).toFixed(1)}`,
    `rss_peak_MiB=${(rssPeak / 1048576).toFixed(1)}`,
    `ext_peak_MiB=${(extPeak / 1048576).toFixed(1)}`,
    `ops=${ops}`,
    `bytes=${bytes}`,
    `secs=${secs.toFixed(4)}`,
  ];
  if (extra) fields.push(extra);
  console.log(fields.join(' '));
}

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

module.exports = { sample, now, parseSize, report, fail };
