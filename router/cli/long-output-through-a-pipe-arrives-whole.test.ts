// A pipe takes 64 KB at once; Node queues the rest of a write, and the command's
// process.exit() dropped it: `weft datastore export | ...` (a backup over ssh, through
// gzip) got 64 KB of an export while saying "exported 401 records", and `weft node
// routes | jq` 64 KB of 19 MB. Each command now waits for its output to be out.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLI, weftWithDatastore } from "./built-command.test-helper.js";

describe("a command's output longer than a pipe holds", () => {
  const { dir, weft } = weftWithDatastore("pipe", { quiet: true });
  const pools = Array.from({ length: 400 }, (_, i) => `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-${i}}\nspec: {cidr: 10.${i >> 8}.${i & 255}.0/24, ipipMode: Always, natOutgoing: true}\n`);
  writeFileSync(`${dir}/pools.yaml`, pools.join("---\n"));
  /** weft ARGS into a reader that starts a second late (ssh, gzip on a busy machine); what it received. */
  const piped = (args: string[]) => {
    const cmd = [process.execPath, CLI, ...args, "--datastore", `sqlite:${dir}/w.db`].map((a) => `'${a}'`).join(" ");
    return spawnSync("sh", ["-c", `${cmd} 2>/dev/null | (sleep 1; cat)`], { encoding: "utf8", maxBuffer: 16 << 20, timeout: 30_000 }).stdout;
  };

  it("arrives whole: a datastore export (a backup through a pipe) and a listing", () => {
    expect(weft(["apply", "-f", `${dir}/pools.yaml`]).status).toBe(0);
    const whole = weft(["datastore", "export"]).stdout;
    const exported = piped(["datastore", "export"]);
    const listed = piped(["get", "ippool", "-o", "yaml"]);
    console.log(`[pipe] datastore export through a late pipe: ${exported.length} of ${whole.length} bytes; get ippool -o yaml: ${listed.length} bytes`);
    expect(whole.length).toBeGreaterThan(100_000);
    expect(exported.length).toBe(whole.length);
    expect(JSON.parse(exported).records).toEqual(JSON.parse(whole).records);
    expect(listed.match(/kind: IPPool$/gm)).toHaveLength(400);
  });
});
