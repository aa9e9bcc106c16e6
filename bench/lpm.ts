// LPM micro-benchmark: lookups per second inside wasm with 10,000 random prefixes
// and random addresses; insert and delete rates; memory used by the table.
import { randomInt } from "node:crypto";
import { FastPath, ENCAP_IPIP } from "../router/dataplane/fastpath.js";
import { maskOf, type Prefix } from "../router/dataplane/addr.js";

const PREFIXES = Number(process.env.LPM_PREFIXES ?? 10_000);
const json = process.argv.includes("--json");

function randomPrefixes(n: number): Prefix[] {
  const seen = new Set<string>();
  const out: Prefix[] = [];
  while (out.length < n) {
    const len = randomInt(8, 33);
    const addr = (randomInt(0, 2 ** 32) & maskOf(len)) >>> 0;
    const k = `${addr}/${len}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ addr, len });
  }
  return out;
}

const fp = new FastPath();
const prefixes = randomPrefixes(PREFIXES);

let t = process.hrtime.bigint();
prefixes.forEach((p, i) => fp.upsert({ prefix: p, nextHop: i + 1, encap: ENCAP_IPIP }));
const insertNs = Number(process.hrtime.bigint() - t);

const scratch = fp.x.layoutScratch();
const n = fp.x.layoutScratchBytes() / 4;
const addrs = new Uint32Array(fp.memory, scratch, n);
for (let i = 0; i < n; i++) addrs[i] = randomInt(0, 2 ** 32);
// Half the probes inside known prefixes, so the deeper levels are exercised too.
for (let i = 0; i < n; i += 2) {
  const p = prefixes[i % prefixes.length];
  addrs[i] = (p.addr | (randomInt(0, 2 ** 32) & ~maskOf(p.len))) >>> 0;
}
fp.x.lookupBench(n, 2); // warm up
const rounds = 20;
t = process.hrtime.bigint();
const check = fp.x.lookupBench(n, rounds);
const lookupNs = Number(process.hrtime.bigint() - t);
const lookupsPerSec = (n * rounds) / (lookupNs / 1e9);

const nodes = fp.x.lpmNodesLive();
const memoryBytes = fp.x.layoutLpmRootBytes() + nodes * fp.x.layoutLpmNodeBytes() + PREFIXES * 16;

t = process.hrtime.bigint();
for (const p of prefixes) fp.remove(p);
const deleteNs = Number(process.hrtime.bigint() - t);

const result = {
  prefixes: PREFIXES,
  lookupsPerSecond: Math.round(lookupsPerSec),
  insertsPerSecond: Math.round(PREFIXES / (insertNs / 1e9)),
  deletesPerSecond: Math.round(PREFIXES / (deleteNs / 1e9)),
  tableNodes: nodes,
  memoryBytes,
  nodesAfterDeletingAll: fp.x.lpmNodesLive(),
  checksum: check >>> 0,
};
if (json) {
  console.log(JSON.stringify(result));
} else {
  console.log(`LPM with ${PREFIXES} random prefixes (/8-/32), ${n} random addresses x ${rounds} rounds`);
  console.log(`  lookups : ${(lookupsPerSec / 1e6).toFixed(1)} million/s inside wasm (target >= 100)`);
  console.log(`  inserts : ${(result.insertsPerSecond / 1e3).toFixed(0)} thousand/s`);
  console.log(`  deletes : ${(result.deletesPerSecond / 1e3).toFixed(0)} thousand/s`);
  console.log(`  memory  : ${(memoryBytes / 1024 / 1024).toFixed(2)} MiB (root 256 KiB + ${nodes} nodes of 1 KiB + route records); ${result.nodesAfterDeletingAll} nodes left after deleting all`);
}
