// What the README's "Running weft on a host" does: the built weft and weft-cni linked
// into a bin directory run from there, and scripts/weft-node.service is a unit systemd
// accepts, whose exit-code rule matches what the node's exit codes mean.
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { projectRoot } from "../native/index.js";

const run = promisify(execFile);
const root = projectRoot();
const bin = mkdtempSync(path.join(tmpdir(), "weft-bin-"));
const unit = path.join(root, "scripts", "weft-node.service");
afterAll(() => rmSync(bin, { recursive: true, force: true }));

describe("weft on a host", () => {
  it("weft and weft-cni run through a symlink in a bin directory (the build makes them executable)", async () => {
    for (const [name, target] of [["weft", "dist/router/cli/main.js"], ["weft-cni", "dist/router/cni/main.js"]]) {
      const file = path.join(root, target);
      expect(statSync(file).mode & 0o111, `${target} is executable`).toBe(0o111);
      expect(readFileSync(file, "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
      symlinkSync(file, path.join(bin, name));
    }
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    expect((await run("weft", ["--version"], { env, encoding: "utf8" })).stdout.trim()).toBe("0.1.0");
    const version = spawnSync("weft-cni", [], { env: { ...env, CNI_COMMAND: "VERSION" }, input: '{"cniVersion":"1.0.0"}', encoding: "utf8" });
    expect(JSON.parse(version.stdout)).toMatchObject({ cniVersion: "1.0.0" });
  });

  it("scripts/weft-node.service passes systemd-analyze verify with no complaint", async () => {
    const r = await run("systemd-analyze", ["verify", unit], { encoding: "utf8" });
    console.log(`[service] systemd-analyze verify: exit 0, stderr ${JSON.stringify(r.stderr)}`);
    expect(r.stderr).toBe("");
  });

  it("the unit restarts on exit 1 and not on exit 2, which is what the node uses for a setting that cannot work; systemctl reload sends SIGHUP, which the node takes as a reload", async () => {
    const text = readFileSync(unit, "utf8");
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/env weft node run$/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
    expect(text).toMatch(/^RestartPreventExitStatus=2$/m);
    expect(text).toMatch(/^EnvironmentFile=-\/etc\/weft\/weft\.env$/m);
    const bad = await run(process.execPath, [path.join(bin, "weft"), "node", "run", "--metrics-address", "nine"], { encoding: "utf8" }).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining("--metrics-address must be [HOST:]PORT") });
  });
});
