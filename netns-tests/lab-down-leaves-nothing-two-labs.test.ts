// weft lab down removes every namespace, process, TUN, route, nft table and file it
// made (even after its nodes were killed), and two labs with different prefixes run
// side by side without touching each other; weft run on a lab host through lab exec
// reaches that lab's node and datastore.
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { newLab } from "./helpers.js";

const netnsOf = (prefix: string) => execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").filter((l) => l.startsWith(`${prefix}-`));
const processesOf = (prefix: string) => {
  try {
    return execFileSync("pgrep", ["-f", `/run/weft-lab/${prefix}/`], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
};

describe("lab isolation and teardown", () => {
  it("two labs (ta1 on SQLite, ta2 static) run at once; each reaches only its own pods; down leaves nothing", async () => {
    const a = newLab("ta1", { datastore: "sqlite" });
    const b = newLab("ta2");
    try {
      await Promise.all([a.up("ipip"), b.up("vxlan")]);
      const [ma, mb] = await Promise.all([a.reachability(), b.reachability()]);
      expect(Object.values(ma).flatMap((r) => Object.values(r)).every(Boolean)).toBe(true);
      expect(Object.values(mb).flatMap((r) => Object.values(r)).every(Boolean)).toBe(true);
      // Same addresses in both labs, different worlds: each lab's worker-1 has only its own nodes.
      expect((await a.counters("worker-2")).ipip_rx).toBeGreaterThan(0);
      expect((await b.counters("worker-2")).vxlan_rx).toBeGreaterThan(0);
      expect((await b.counters("worker-2")).drop_unknown_source).toBe(0);
      // weft run through lab exec on a host talks to that lab's node and datastore.
      const inLab = (prefix: string, ...args: string[]) =>
        execFileSync(process.execPath, [a.cli(), "lab", "exec", "worker-1", "--prefix", prefix, "--", process.execPath, a.cli(), ...args], { encoding: "utf8", env: { ...process.env, WEFT_DATASTORE: "", WEFT_CONTROL: "" }, timeout: 60_000 });
      const statusA = inLab("ta1", "node", "status");
      console.log(`[ta1] weft node status on worker-1, through lab exec:\n${statusA}`);
      expect(statusA.match(/\| up +\| .* \| Established \|/g)).toHaveLength(3);
      expect(inLab("ta1", "get", "node").trim().split("\n").slice(1)).toEqual(["master", "worker-1", "worker-2", "worker-3"]);
      expect(JSON.parse(inLab("ta2", "node", "status", "--json")).name).toBe("worker-1");
      // A crash: kill lab a's nodes without SIGTERM, then tear it down.
      for (const pid of processesOf("ta1").split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
    } finally {
      await a.down();
      await b.down();
    }
    for (const p of ["ta1", "ta2"]) {
      expect(netnsOf(p)).toEqual([]);
      expect(processesOf(p)).toBe("");
      expect(existsSync(`/run/weft-lab/${p}`)).toBe(false);
    }
    // Namespaces own their TUNs, routes and nft tables: with the namespaces gone, so are they.
    expect(execFileSync("ip", ["-o", "link"], { encoding: "utf8" })).not.toMatch(/weft0/);
  });
});
