// weft bench: one iperf3 run per path in the lab (single TCP stream, pod-1 -> pod-2,
// same subnet), each reported with its ratio to the kernel's own VXLAN measured in
// the same run. Absolute figures drift on a shared machine; ratios hold.
import { writeFileSync } from "node:fs";
import os from "node:os";
import { Lab } from "../lab/lab.js";

export type BenchPath = "kernel-direct" | "kernel-vxlan" | "weft-ipip" | "weft-vxlan";

export interface BenchRun {
  path: BenchPath;
  gbps: number;
  ratioToKernelVxlan?: number;
  retransmits?: number;
}

export interface BenchOptions {
  seconds: number;
  prefix: string;
  json?: string;
  progress: (line: string) => void;
}

const POD2 = "192.168.133.194";

async function iperf(lab: Lab, seconds: number): Promise<{ gbps: number; retransmits: number }> {
  await lab.exec("pod-2", ["iperf3", "-s", "-1", "-D", "-p", "5201"]);
  await new Promise((r) => setTimeout(r, 300));
  const out = await lab.exec("pod-1", ["iperf3", "-c", POD2, "-p", "5201", "-t", String(seconds), "-J"], { timeoutMs: (seconds + 30) * 1000 });
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
  return { gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent.retransmits ?? 0 };
}

export async function runBench(opts: BenchOptions): Promise<BenchRun[]> {
  const lab = new Lab({ prefix: opts.prefix, log: (l) => opts.progress(`lab: ${l}`) });
  const runs: BenchRun[] = [];
  const measure = async (path: BenchPath, mtu: number) => {
    await lab.setPodMTU("pod-1", mtu);
    await lab.setPodMTU("pod-2", mtu);
    if (!(await lab.ping("pod-1", POD2, { count: 2 }))) throw new Error(`${path}: pod-1 cannot reach pod-2; the lab is broken`);
    opts.progress(`measuring ${path} (pod MTU ${mtu}, ${opts.seconds} s)…`);
    const r = await iperf(lab, opts.seconds);
    runs.push({ path, gbps: r.gbps, retransmits: r.retransmits });
    opts.progress(`${path}: ${r.gbps.toFixed(2)} Gbit/s`);
  };
  try {
    await lab.up("direct");
    await measure("kernel-direct", 1500);
    await lab.useKernelVxlan(["worker-1", "worker-2"], ["worker-1", "worker-2"]);
    await measure("kernel-vxlan", 1450);
    await lab.removeKernelVxlan(["worker-1", "worker-2"]);
    await lab.restartNodes("ipip");
    await measure("weft-ipip", 1480);
    await lab.restartNodes("vxlan");
    await measure("weft-vxlan", 1450);
  } finally {
    await lab.down();
  }
  const base = runs.find((r) => r.path === "kernel-vxlan")?.gbps;
  for (const r of runs) if (base) r.ratioToKernelVxlan = r.gbps / base;
  if (opts.json) {
    const doc = {
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), node: process.version },
      test: { tool: "iperf3", streams: 1, seconds: opts.seconds, from: "pod-1", to: "pod-2" },
      runs: runs.map((r) => ({ path: r.path, gbps: Number(r.gbps.toFixed(3)), ratioToKernelVxlan: r.ratioToKernelVxlan && Number(r.ratioToKernelVxlan.toFixed(3)), retransmits: r.retransmits })),
    };
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
  }
  return runs;
}

export function formatBench(runs: BenchRun[]): string {
  const lines = ["path            Gbit/s   x kernel-vxlan", "--------------  -------  --------------"];
  for (const r of runs) lines.push(`${r.path.padEnd(14)}  ${r.gbps.toFixed(2).padStart(7)}  ${(r.ratioToKernelVxlan ?? 0).toFixed(2).padStart(14)}`);
  return lines.join("\n");
}
