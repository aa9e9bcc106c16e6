import { describe, expect, it } from "vitest";
import { DEFAULTS, MAX_BATCH, SWITCHES, readDataPathEnv, switchesHelp } from "./env.js";
import { FastPath } from "../dataplane/fastpath.js";

function read(env: Record<string, string>) {
  const warnings: string[] = [];
  const out = readDataPathEnv(env, (w) => warnings.push(`${w.name}=${w.value} (${w.expected})`));
  return { out, warnings };
}

describe("the node's environment switches", () => {
  it("take their defaults when unset or empty", () => {
    expect(read({})).toEqual({ out: DEFAULTS, warnings: [] });
    expect(read({ WEFT_BATCH: "", WEFT_RX_THREAD: "" })).toEqual({ out: DEFAULTS, warnings: [] });
  });

  it("read every value in range", () => {
    const { out, warnings } = read({
      WEFT_OFFLOADS: "off",
      WEFT_RX_THREAD: "0",
      WEFT_VXLAN_SOURCE_PORTS: "8",
      WEFT_BUSY_POLL_US: "1000",
      WEFT_BATCH: "1",
      WEFT_STAGE_TIMING: "1",
    });
    expect(warnings).toEqual([]);
    expect(out).toEqual({ offloadsOff: true, rxThread: false, vxlanSourcePorts: 8, busyPollMicros: 1000, batch: 1, stageTiming: true });
    expect(read({ WEFT_RX_THREAD: "1", WEFT_OFFLOADS: "on" }).out).toMatchObject({ rxThread: true, offloadsOff: false });
  });

  it("refuse a value outside the range with a warning naming it, and keep the default (a NaN batch once stopped the data path)", () => {
    const { out, warnings } = read({
      WEFT_OFFLOADS: "no",
      WEFT_RX_THREAD: "yes",
      WEFT_VXLAN_SOURCE_PORTS: "16",
      WEFT_BUSY_POLL_US: "abc",
      WEFT_BATCH: "x",
      WEFT_STAGE_TIMING: "true",
    });
    expect(out).toEqual(DEFAULTS);
    expect(warnings).toEqual([
      "WEFT_OFFLOADS=no (off|on)",
      "WEFT_RX_THREAD=yes (1|0)",
      "WEFT_VXLAN_SOURCE_PORTS=16 (1-8)",
      "WEFT_BUSY_POLL_US=abc (0-1000)",
      "WEFT_BATCH=x (1-256)",
      "WEFT_STAGE_TIMING=true (1|0)",
    ]);
    for (const bad of ["0", "-1", "2.5", "257", "1e2", " "]) expect(read({ WEFT_BATCH: bad }).warnings, bad).toHaveLength(1);
  });

  it("allow no larger batch than the fast path holds", () => {
    expect(MAX_BATCH).toBe(new FastPath().maxIn);
  });

  it("are all listed by --help, within 80 columns", () => {
    const help = switchesHelp();
    for (const s of SWITCHES) expect(help).toContain(`${s.name}=${s.values}`);
    for (const line of help.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80);
  });
});
