// A node's stop (SIGTERM, SIGINT) never hangs: a step that throws is logged and the rest
// still runs; a stop past its deadline exits anyway (status 1); a second signal exits at
// once. Runs untilSignal from the build in a child process, with a stand-in node whose
// data plane stops at once or never.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../native/index.js";
import { tempDir } from "../temp-dir.test-helper.js";

const dir = tempDir("stop");
const script = path.join(dir, "stop.mjs");
writeFileSync(
  script,
  `import { untilSignal } from ${JSON.stringify(path.join(projectRoot(), "dist", "router", "node", "run.js"))};
import { logger } from ${JSON.stringify(path.join(projectRoot(), "dist", "router", "cli", "log.js"))};
const mode = process.argv[2];
const base = { fp: { counters: () => ({}) }, dp: { stop: () => (mode === "throw" ? Promise.resolve() : new Promise(() => {})) } };
setInterval(() => {}, 1000);
untilSignal(base, logger("info"), () => { if (mode === "throw") throw new Error("watch.stop broke"); }, mode === "deadline" ? 1000 : 60000).then(() => process.exit(0));
console.log(JSON.stringify({ msg: "ready" }));
`,
);

/** Runs the stand-in, sends the signals (ms after it is ready), returns its exit code, time to exit after the first signal, and log messages. */
function run(mode: string, signals: number[]): Promise<{ code: number | null; ms: number; msgs: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, mode], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let t0 = 0;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!t0 && out.includes('"ready"')) {
        t0 = Date.now();
        for (const at of signals) setTimeout(() => child.kill("SIGTERM"), at);
      }
    });
    child.on("exit", (code) => resolve({ code, ms: Date.now() - t0, msgs: out.trim().split("\n").map((l) => (JSON.parse(l) as { msg: string }).msg) }));
  });
}

describe("a node's stop never hangs", () => {
  it("a step that throws is logged, and the rest of the stop still runs (exit 0)", async () => {
    const r = await run("throw", [0]);
    expect(r.code).toBe(0);
    expect(r.msgs).toContain("a step of the stop failed; stopping the rest");
  });

  it("a data plane that never stops: the node exits anyway at the deadline, saying so (exit 1)", async () => {
    const r = await run("deadline", [0]);
    console.log(`[stop] exited ${r.ms} ms after SIGTERM with a 1000 ms deadline`);
    expect(r.code).toBe(1);
    expect(r.ms).toBeGreaterThanOrEqual(950);
    expect(r.msgs).toContain("the stop did not finish in time: exiting anyway; weft0 and its routes stay");
  });

  it("a second signal while stopping exits at once (exit 1)", async () => {
    const r = await run("hang", [0, 300]);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(5000);
    expect(r.msgs).toContain("second signal while stopping: exiting now; weft0 and its routes stay");
  });
});
