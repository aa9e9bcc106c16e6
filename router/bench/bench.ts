// weft bench: in one lab run, each path pod-1 -> pod-2 (same subnet) measured the same
// way — one and four TCP streams (iperf3), TCP request/response latency (sockperf),
// 64-byte UDP packets per second (iperf3), CPU seconds per Gbit of the whole machine —
// each reported as a ratio to the kernel's own VXLAN measured in the same run.
// Absolute figures drift on a shared machine; ratios hold.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import os from "node:os";
import { Lab } from "../lab/lab.js";
import { COUNTER_NAMES } from "../dataplane/counters.js";
import { BENCH_PATHS, measurablePaths, type BenchPath } from "./paths.js";

export { BENCH_PATHS, type BenchPath };

export interface PathResult {
  path: BenchPath;
  /** What carries pod-1 -> pod-2 on this path. */
  carries: string;
  podMTU: number;
  tcp1: { gbps: number; retransmits: number };
  tcp4: { gbps: number };
  rr: { p50us: number; p99us: number; transactionsPerSecond: number };
  udp64: { pps: number; lossPercent: number };
  cpu: { secondsPerGbit: number; busyPercent: number };
  /** weft paths: where each node's data-path time went during the single-stream run (seconds). */
  stages?: Record<string, Record<string, number>>;
  ratio?: { tcp1: number; tcp4: number; rrP50: number; rrP99: number; udp64: number; cpuPerGbit: number };
}

export interface BenchOptions {
  seconds: number;
  prefix: string;
  /** Only these paths (kernel-vxlan is always measured: it is the base of every ratio). */
  paths?: BenchPath[];
  progress: (line: string) => void;
}

export interface BenchReport {
  machine: { cpus: number; model: string; kernel: string; node: string };
  test: { from: string; to: string; seconds: number; tools: string[] };
  /** Single-stream TCP per path, the summary kept stable for scripts. */
  runs: Array<{ path: BenchPath; gbps: number; ratioToKernelVxlan: number }>;
  paths: PathResult[];
}

const POD2 = "192.168.133.194";

/** Busy and total CPU time of the whole machine so far, in seconds (/proc/stat). */
function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const hz = 100; // USER_HZ
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  return { busy: busy / hz, total: (busy + idle + iowait) / hz };
}

interface IperfJson {
  end: {
    sum_received?: { bits_per_second: number };
    sum_sent?: { retransmits?: number };
    sum?: { packets: number; lost_packets: number; seconds: number; lost_percent: number };
  };
}

/** Waits until something listens on TCP port in pod-2 (a fixed pause lost the race on a loaded machine). */
async function listening(lab: Lab, port: number): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 100) {
    if ((await lab.exec("pod-2", ["ss", "-Hltn", `sport = :${port}`], { allowFail: true })).trim()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on pod-2's port ${port} after 10 s (iperf3 or sockperf did not start)`);
}

async function iperf(lab: Lab, args: string[], seconds: number): Promise<IperfJson> {
  await lab.exec("pod-2", ["iperf3", "-s", "-1", "-D", "-p", "5201"]);
  await listening(lab, 5201);
  const out = await lab.exec("pod-1", ["iperf3", "-c", POD2, "-p", "5201", "-t", String(seconds), "-J", ...args], { timeoutMs: (seconds + 30) * 1000 });
  return JSON.parse(out) as IperfJson;
}

/** TCP ping-pong of 64-byte messages; round-trip percentiles in microseconds. */
async function requestResponse(lab: Lab, seconds: number): Promise<PathResult["rr"]> {
  let out = "";
  // Once more when a run gave no percentiles (on a loaded machine a 1 s run once had none).
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = lab.exec("pod-2", ["timeout", String(seconds + 20), "sockperf", "server", "-i", "0.0.0.0", "-p", "11111", "--tcp"], { allowFail: true });
    await listening(lab, 11111);
    out = await lab.exec("pod-1", ["sockperf", "ping-pong", "-i", POD2, "-p", "11111", "--tcp", "-m", "64", "-t", String(seconds), "--full-rtt"], { timeoutMs: (seconds + 20) * 1000, allowFail: true });
    await lab.exec("pod-2", ["pkill", "-f", "sockperf server"], { allowFail: true });
    await server;
    if (/percentile 50\.000 =/.test(out)) break;
  }
  const pct = (p: string) => Number(new RegExp(`percentile ${p} =\\s*([\\d.]+)`).exec(out)?.[1] ?? NaN);
  const run = /RunTime=([\d.]+) sec; SentMessages=(\d+)/.exec(out);
  if (!/percentile 50\.000 =/.test(out)) throw new Error(`sockperf gave no round-trip percentiles twice; it said: ${out.trim().split("\n").slice(-5).join(" | ") || "nothing"}`);
  return { p50us: pct("50.000"), p99us: pct("99.000"), transactionsPerSecond: run ? Number(run[2]) / Number(run[1]) : NaN };
}

/** The data-path stages the nodes time (the stage_ns_* counters). */
const STAGES = Object.values(COUNTER_NAMES).filter((n) => n.startsWith("stage_ns_")).map((n) => n.slice("stage_ns_".length));

async function stageSeconds(lab: Lab, host: string): Promise<Record<string, number>> {
  const c = await lab.counters(host);
  const out: Record<string, number> = {};
  for (const s of STAGES) out[s] = Number(((c[`stage_ns_${s}`] ?? 0) / 1e9).toFixed(3));
  return out;
}

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  // The nodes time each data-path stage (a clock read per step) for the breakdown.
  process.env.WEFT_STAGE_TIMING = "1";
  const lab = new Lab({ prefix: opts.prefix, log: (l) => opts.progress(`lab: ${l}`) });
  const installed = (tool: string) => (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, tool)));
  const { paths, leftOut } = measurablePaths(opts.paths ?? BENCH_PATHS, installed);
  for (const line of leftOut) opts.progress(line);
  const wanted = new Set<BenchPath>(paths);
  wanted.add("kernel-vxlan");
  const order = BENCH_PATHS.filter((p) => wanted.has(p));
  const results: PathResult[] = [];
  const s = opts.seconds;
  // Latency and UDP runs need less time than throughput to settle.
  const short = Math.min(s, 5);
  const measure = async (path: BenchPath, carries: string, mtu: number, weft: boolean) => {
    const n = results.length + 1;
    const step = (what: string) => opts.progress(`[${n}/${order.length}] ${path}: ${what}`);
    await lab.setPodMTU("pod-1", mtu);
    await lab.setPodMTU("pod-2", mtu);
    if (!(await lab.ping("pod-1", POD2, { count: 2 }))) throw new Error(`${path}: pod-1 cannot reach pod-2; the lab is broken`);
    step(`1 TCP stream, ${s} s`);
    const before = weft ? await Promise.all(["worker-1", "worker-2"].map((h) => stageSeconds(lab, h))) : undefined;
    const c0 = cpuTimes();
    const t1 = await iperf(lab, [], s);
    const c1 = cpuTimes();
    const tcp1 = { gbps: (t1.end.sum_received?.bits_per_second ?? 0) / 1e9, retransmits: t1.end.sum_sent?.retransmits ?? 0 };
    let stages: PathResult["stages"];
    if (before) {
      const after = await Promise.all(["worker-1", "worker-2"].map((h) => stageSeconds(lab, h)));
      const diff = (i: number) => Object.fromEntries(STAGES.map((k) => [k, Number((after[i][k] - before[i][k]).toFixed(3))]));
      stages = { "worker-1 (sends)": diff(0), "worker-2 (receives)": diff(1) };
    }
    step(`4 TCP streams, ${s} s`);
    const t4 = await iperf(lab, ["-P", "4"], s);
    step(`TCP request/response, ${short} s`);
    const rr = await requestResponse(lab, short);
    step(`64-byte UDP, ${short} s`);
    const u = await iperf(lab, ["-u", "-b", "0", "-l", "64"], short);
    const sum = u.end.sum ?? { packets: 0, lost_packets: 0, seconds: 1, lost_percent: 100 };
    const r: PathResult = {
      path,
      carries,
      podMTU: mtu,
      tcp1,
      tcp4: { gbps: (t4.end.sum_received?.bits_per_second ?? 0) / 1e9 },
      rr,
      udp64: { pps: Math.max(0, sum.packets - sum.lost_packets) / sum.seconds, lossPercent: sum.lost_percent },
      cpu: { secondsPerGbit: (c1.busy - c0.busy) / Math.max(tcp1.gbps * s, 1e-9), busyPercent: (100 * (c1.busy - c0.busy)) / Math.max(c1.total - c0.total, 1e-9) },
      stages,
    };
    results.push(r);
    step(`${tcp1.gbps.toFixed(2)} Gbit/s (4 streams ${r.tcp4.gbps.toFixed(2)}), RR p50 ${rr.p50us.toFixed(0)} us, ${(r.udp64.pps / 1000).toFixed(0)} kpps`);
  };
  try {
    await lab.up("direct");
    if (wanted.has("kernel-direct")) await measure("kernel-direct", "kernel routes, no encapsulation", 1500, false);
    await lab.useKernelVxlan(["worker-1", "worker-2"], ["worker-1", "worker-2"]);
    await measure("kernel-vxlan", "the kernel's vxlan device (VNI 4096)", 1450, false);
    await lab.removeKernelVxlan(["worker-1", "worker-2"]);
    if (wanted.has("weft-ipip")) {
      await lab.restartNodes("ipip");
      await measure("weft-ipip", "weft IPIP (raw socket, TSO split and GRO merge in wasm)", 1480, true);
    }
    if (wanted.has("weft-ipip-nicgro")) {
      // The same as a NIC with GRO would carry it: both hosts' eth0 merge what they
      // receive, so weft's raw socket is handed merged packets (the lab's veths do not
      // merge by themselves; the kernel's VXLAN merges in its own device either way).
      await lab.restartNodes("ipip");
      await lab.nicGro(["worker-1", "worker-2"], true);
      try {
        await measure("weft-ipip-nicgro", "weft IPIP with the hosts' eth0 merging received packets as a NIC's GRO does (gro on, gro_flush_timeout 50 us)", 1480, true);
      } finally {
        await lab.nicGro(["worker-1", "worker-2"], false);
      }
    }
    if (wanted.has("weft-vxlan")) {
      await lab.restartNodes("vxlan");
      await measure("weft-vxlan", "weft VXLAN (UDP GSO/GRO, TSO split and GRO merge in wasm)", 1450, true);
    }
    if (wanted.has("weft-vxlan-rxthread")) {
      // The same with the receive thread forced on: what a second core is worth here.
      await lab.restartNodes("vxlan", { rxThread: true });
      await measure("weft-vxlan-rxthread", "weft VXLAN receiving on a thread of its own (WEFT_RX_THREAD=1)", 1450, true);
    }
    if (wanted.has("weft-vxlan-busypoll")) {
      // The same with busy-polling after each batch (WEFT_BUSY_POLL_US=40) instead of sleeping at once.
      await lab.restartNodes("vxlan", { busyPollMicros: 40 });
      await measure("weft-vxlan-busypoll", "weft VXLAN busy-polling 40 us after each batch (WEFT_BUSY_POLL_US=40)", 1450, true);
    }
    if (wanted.has("weft-crosssubnet")) {
      await lab.restartNodes("crosssubnet");
      await measure("weft-crosssubnet", "weft CrossSubnet: same subnet, so kernel routes weft programmed, no encapsulation", 1480, true);
    }
  } finally {
    await lab.down();
  }
  const base = results.find((r) => r.path === "kernel-vxlan")!;
  const q = (a: number, b: number) => Number((b > 0 && Number.isFinite(a) ? a / b : NaN).toFixed(3));
  for (const r of results) {
    r.ratio = {
      tcp1: q(r.tcp1.gbps, base.tcp1.gbps),
      tcp4: q(r.tcp4.gbps, base.tcp4.gbps),
      rrP50: q(r.rr.p50us, base.rr.p50us),
      rrP99: q(r.rr.p99us, base.rr.p99us),
      udp64: q(r.udp64.pps, base.udp64.pps),
      cpuPerGbit: q(r.cpu.secondsPerGbit, base.cpu.secondsPerGbit),
    };
  }
  return {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "?", kernel: os.release(), node: process.version },
    test: { from: "pod-1", to: "pod-2 (same subnet)", seconds: s, tools: ["iperf3 (TCP 1 and 4 streams, UDP 64-byte)", "sockperf ping-pong (TCP, 64-byte)", "/proc/stat (CPU)"] },
    runs: results.map((r) => ({ path: r.path, gbps: Number(r.tcp1.gbps.toFixed(3)), ratioToKernelVxlan: r.ratio!.tcp1 })),
    paths: results,
  };
}

export function formatBench(report: BenchReport): string {
  const head = ["path", "1 stream Gbit/s", "4 streams", "RR p50 us", "RR p99 us", "64B UDP kpps", "CPU s/Gbit"];
  const rows = report.paths.map((r) => [
    r.path,
    `${r.tcp1.gbps.toFixed(2)} (${r.ratio!.tcp1.toFixed(2)}x)`,
    `${r.tcp4.gbps.toFixed(2)} (${r.ratio!.tcp4.toFixed(2)}x)`,
    `${r.rr.p50us.toFixed(0)} (${r.ratio!.rrP50.toFixed(2)}x)`,
    `${r.rr.p99us.toFixed(0)} (${r.ratio!.rrP99.toFixed(2)}x)`,
    `${(r.udp64.pps / 1000).toFixed(0)} (${r.ratio!.udp64.toFixed(2)}x)`,
    `${r.cpu.secondsPerGbit.toFixed(3)} (${r.ratio!.cpuPerGbit.toFixed(2)}x)`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const out = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line), "", "(x: ratio to kernel-vxlan in this run; for latency and CPU, lower is better)"];
  for (const r of report.paths) {
    // CrossSubnet within a subnet never touches weft's data path: nothing to show.
    if (!r.stages || Object.values(r.stages).every((st) => Object.values(st).every((v) => v === 0))) continue;
    out.push("", `${r.path}: data-path time by stage during the single-stream run (seconds of ${report.test.seconds})`);
    for (const [host, st] of Object.entries(r.stages)) out.push(`  ${host.padEnd(20)} ${Object.entries(st).map(([k, v]) => `${k} ${v.toFixed(2)}`).join("  ")}`);
  }
  return out.join("\n");
}
