// weft bench in a short run: every path it was asked for (weft IPIP with the hosts
// merging as a NIC's GRO does, then weft VXLAN with that undone), every metric, each as a
// ratio to kernel VXLAN, the per-stage breakdown for weft paths, and the JSON, SVG and
// PNG files a user gets. The figures themselves are printed, not asserted.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { projectRoot } from "../router/native/index.js";
import { requireRoot } from "./helpers.js";
import type { BenchReport } from "../router/bench/bench.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "weft-bench-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("weft bench dataplane (1-second runs: kernel VXLAN, weft IPIP with NIC-like GRO, weft VXLAN)", () => {
  let report: BenchReport;
  let table = "";

  it("runs and prints a table with ratios to kernel VXLAN", async () => {
    requireRoot();
    const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
    const r = await promisify(execFile)(process.execPath, [cli, "bench", "dataplane", "--seconds", "1", "--paths", "weft-ipip-nicgro,weft-vxlan", "--prefix", "tbench", "--json", `${dir}/b.json`, "--svg", `${dir}/b.svg`, "--png", `${dir}/b.png`], { timeout: 240_000 });
    table = r.stdout;
    console.log(`[tbench]\n${table}`);
    report = JSON.parse(readFileSync(`${dir}/b.json`, "utf8")) as BenchReport;
    expect(report.paths.map((p) => p.path)).toEqual(["kernel-vxlan", "weft-ipip-nicgro", "weft-vxlan"]);
    // The single-stream summary scripts read: {"runs":[{"path","gbps"}]}.
    expect(report.runs.map((r) => r.path)).toEqual(["kernel-vxlan", "weft-ipip-nicgro", "weft-vxlan"]);
    for (const r of report.runs) expect(r.gbps).toBeGreaterThan(0);
    expect(table).toMatch(/kernel-vxlan .*\(1\.00x\)/);
  });

  it("measures every metric on every path, the kernel's VXLAN being 1.0", () => {
    for (const p of report.paths) {
      expect(p.tcp1.gbps).toBeGreaterThan(0);
      expect(p.tcp4.gbps).toBeGreaterThan(0);
      expect(p.rr.p50us).toBeGreaterThan(0);
      expect(p.rr.p99us).toBeGreaterThanOrEqual(p.rr.p50us);
      expect(p.udp64.pps).toBeGreaterThan(0);
      expect(p.cpu.secondsPerGbit).toBeGreaterThan(0);
      for (const v of Object.values(p.ratio!)) expect(Number.isFinite(v)).toBe(true);
    }
    expect(Object.values(report.paths[0].ratio!).every((v) => v === 1)).toBe(true);
  });

  it("shows where weft's data-path time went, per node and stage", () => {
    for (const path of ["weft-ipip-nicgro", "weft-vxlan"]) {
      const st = report.paths.find((p) => p.path === path)!.stages!;
      expect(Object.keys(st)).toEqual(["worker-1 (sends)", "worker-2 (receives)"]);
      expect(st["worker-1 (sends)"].network_send).toBeGreaterThan(0);
      expect(st["worker-2 (receives)"].network_read).toBeGreaterThan(0);
      expect(table).toMatch(new RegExp(`${path}: data-path time by stage`));
    }
  });

  it("writes the chart as SVG and PNG", () => {
    const svg = readFileSync(`${dir}/b.svg`, "utf8");
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain("weft-vxlan");
    expect(existsSync(`${dir}/b.png`)).toBe(true);
    expect(readFileSync(`${dir}/b.png`).subarray(1, 4).toString()).toBe("PNG");
  });
});
