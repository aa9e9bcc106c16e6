import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { FastPath } from "./fastpath.js";
import { COUNTER_NAMES } from "./counters.js";
import { native, projectRoot } from "../native/index.js";

describe("the fast path's memory layout", () => {
  it("keeps the AssemblyScript runtime's data above everything the native side points into", () => {
    const fp = new FastPath();
    const cfg = JSON.parse(readFileSync(path.join(projectRoot(), "asconfig.json"), "utf8"));
    expect(cfg.options.memoryBase).toBeGreaterThanOrEqual(fp.x.layoutMemoryEnd());
    expect(cfg.options.initialMemory * 65536).toBeGreaterThan(cfg.options.memoryBase);
    expect(cfg.options.maximumMemory).toBe(cfg.options.initialMemory); // never grows
  });

  it("names every counter the wasm counts (asm/counters.ts and counters.ts agree)", () => {
    const src = readFileSync(path.join(projectRoot(), "asm", "counters.ts"), "utf8");
    const wasm = [...src.matchAll(/export const (\w+): u32 = (\d+);/g)].map(([, name, i]) => [name.toLowerCase(), Number(i)] as const);
    expect(wasm.length).toBeGreaterThan(20);
    for (const [name, i] of wasm) {
      const js = COUNTER_NAMES[i];
      expect(js, `counter ${i} (${name})`).toBeDefined();
      // Names agree up to the TS side's shorter spellings of two drop reasons.
      expect(js.replace("drop_too_big", "drop_too_big_no_df")).toBe(name);
    }
  });

  it("gives the native addon's descriptor the same size and field offsets as the wasm", () => {
    const x = new FastPath().x;
    const wasm = {
      size: x.layoutDescSize(),
      off: x.D_OFF.value,
      len: x.D_LEN.value,
      addr: x.D_ADDR.value,
      port: x.D_PORT.value,
      channel: x.D_CHANNEL.value,
      reason: x.D_REASON.value,
      gso: x.D_GSO.value,
      flags: x.D_FLAGS.value,
      tail: x.D_TAIL.value,
    };
    expect(native().descLayout()).toEqual(wasm);
  });
});
