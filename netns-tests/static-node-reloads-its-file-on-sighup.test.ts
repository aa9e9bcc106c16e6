// SIGHUP (systemctl reload weft-node), as BIRD, FRR and GoBGP take it. A static node
// reads its routes file again: routes, encapsulation and mtu apply at once, a file that
// does not load changes nothing, other settings are named as taking a restart. Pods'
// traffic crosses a reload untouched. Before, Node.js's default ended the node on
// SIGHUP, with no log line, and systemd counts that as a clean stop: no restart.
import path from "node:path";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parse as parseYAML, stringify as toYAML } from "yaml";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

describe("a static node reloads its routes file on SIGHUP", () => {
  const lab = useLab("tshup", "ipip") // no datastore: each node from its routes file;
  const file = () => path.join(lab.dir, "worker-1.yaml");
  let original = "";
  const routes = () => lab.exec("worker-1", ["ip", "route", "show", "proto", "87"]);
  const mtu = async () => Number(/ mtu (\d+)/.exec(await lab.exec("worker-1", ["ip", "link", "show", "weft0"]))?.[1]);
  const logTail = (lines = 10) => lab.exec("worker-1", ["tail", "-n", String(lines), path.join(lab.dir, "worker-1.log")]);
  const edit = (change: (doc: any) => void) => {
    const doc = parseYAML(original);
    change(doc);
    writeFileSync(file(), toYAML(doc));
  };
  // The log line a reload ends with (or the one saying the file did not load).
  const reload = async (done: RegExp) => {
    const before = (await lab.exec("worker-1", ["cat", path.join(lab.dir, "worker-1.log")])).length;
    lab.signalNode("worker-1", "SIGHUP");
    await waitFor("the node to log the reload", async () => done.test((await lab.exec("worker-1", ["cat", path.join(lab.dir, "worker-1.log")])).slice(before)), 10_000);
  };
  const block3 = () => parseYAML(original).routes.find((r: { node: string }) => r.node === "worker-3").cidr as string;

  it("a route taken out of the file and the MTU lowered: at once; pod-1 no longer reaches pod-3; put back, it does again", async () => {
    original = readFileSync(file(), "utf8");
    const mtuBefore = await mtu();
    expect(await routes()).toContain(block3());
    edit((d) => {
      d.routes = d.routes.filter((r: { node: string }) => r.node !== "worker-3");
      d.mtu = 1400;
    });
    const t0 = Date.now();
    await reload(/SIGHUP: reloaded the file's routes/);
    console.log(`[tshup] worker-3's route out and mtu 1400: applied ${Date.now() - t0} ms after SIGHUP`);
    expect(await routes()).not.toContain(block3());
    expect(await mtu()).toBe(1400);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(false);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
    expect(lab.nodeRunning("worker-1")).toBe(true);
    expect((await lab.nodeStatus("worker-1")).tunnel).toMatchObject({ mtu: 1400 });

    writeFileSync(file(), original);
    await reload(/SIGHUP: reloaded the file's routes/);
    expect(await routes()).toContain(block3());
    expect(await mtu()).toBe(mtuBefore);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });

  it("a file that does not load (bad YAML, a route over a node's address, gone): nothing changes, the error is logged, the node runs on", async () => {
    const before = await routes();
    const bad: Array<[string, () => void, RegExp]> = [
      ["bad YAML", () => writeFileSync(file(), original + "routes: [\n"), /not valid YAML/],
      ["a route over worker-2's address", () => edit((d) => d.routes.push({ cidr: "10.30.0.0/16", node: "worker-9", address: "10.30.5.5" })), /routes\[3\]\.cidr: 10\.30\.0\.0\/16 contains this node's address/],
      ["the file removed", () => rmSync(file()), /worker-1\.yaml: cannot read: ENOENT/],
    ];
    for (const [what, write, said] of bad) {
      write();
      await reload(/SIGHUP: the file does not load/);
      expect(await logTail(3), what).toMatch(said);
      expect(await routes(), what).toBe(before);
      expect(lab.nodeRunning("worker-1"), what).toBe(true);
    }
    writeFileSync(file(), original);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });

  it("vni and the offloads changed with a route: the route applies, the two are named as taking a restart; pods' pings cross the reload without a loss", async () => {
    const ping = lab.exec("pod-1", ["ping", "-n", "-q", "-i", "0.01", "-c", "300", "-W", "1", lab.podAddress("pod-2")]);
    await new Promise((r) => setTimeout(r, 500));
    edit((d) => {
      d.vni = 5000;
      d.offloads = { tso: false };
      d.routes = d.routes.filter((r: { node: string }) => r.node !== "worker-3");
    });
    await reload(/SIGHUP: reloaded the file's routes/);
    const log = await logTail(4);
    expect(log).toMatch(/SIGHUP: vni, offloads changed in the file: only a restart takes them/);
    expect(await routes()).not.toContain(block3());
    const summary = await ping;
    const lost = /(\d+)% packet loss/.exec(summary)?.[1];
    console.log(`[tshup] 300 pings every 10 ms across a reload: ${lost}% lost`);
    expect(lost).toBe("0");
    writeFileSync(file(), original);
    await reload(/SIGHUP: reloaded the file's routes/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });
});
