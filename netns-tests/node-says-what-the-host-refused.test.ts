// When the host refuses part of what a node installs (here a direct route whose next
// hop the host cannot reach: worker-1 lost its default route), the node says what
// failed, applies the rest, keeps retrying, and does not blame the datastore (it used
// to log "datastore unreachable" and report it as not answering). Once the host can
// take the route again, it goes in and the node says so.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

describe("a node says what the host refused", () => {
  // Direct routing with the vxlan backend: routes come from the datastore, so a Node
  // that speaks no BGP ("ghost", off every subnet) still gets its block routed.
  const lab = useLab("trefuse", "direct", { datastore: "sqlite", setup: (l) => l.switchBackend("vxlan") });
  const weft = (args: string[]) => lab.exec("worker-1", [process.execPath, lab.cli(), ...args, "--control", lab.controlSocket("worker-1")]);
  const status = () => weft(["node", "status"]);
  const log = () => lab.exec("worker-1", ["cat", path.join(lab.dir, "worker-1.log")]);

  it("a route the host refuses: named in the log and in node status; the datastore still counts as reachable; the rest applied", async () => {
    await lab.exec("worker-1", ["ip", "route", "del", "default"]);
    await lab.apply("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: ghost}\nspec: {bgp: {ipv4Address: 10.99.9.9/24}}\n");
    await lab.weft(["ipam", "assign", "--node", "ghost", "--handle", "ghost-1"]);
    const ms = await waitFor("node status to name the refused route", async () => /This host refused part of the routes or rules/.test(await status()), 15_000);
    const text = await status();
    console.log(`[trefuse] after ${ms} ms, weft node status says:\n${text}`);
    expect(text).toMatch(/via 10\.99\.9\.9 dev eth0 proto 87: Error: Nexthop has invalid gateway/);
    expect(text).not.toMatch(/Datastore .* is not answering/);
    expect(await log()).toMatch(/could not apply every route or rule to this host \(the rest is applied\); trying again/);
    expect(await log()).not.toMatch(/datastore unreachable/);
    const metrics = await weft(["node", "metrics"]);
    expect(metrics).toMatch(/weft_datastore_reachable\{datastore="[^"]+"\} 1/);
    expect(metrics).toMatch(/^weft_routes_applied\{backend="vxlan"\} 0$/m);
    // The routes the host could take are in (pods cannot be pinged now: proxy ARP
    // for 169.254.1.1 needs the host's default route).
    expect(await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).toMatch(/ via 10\.30\.0\.12 dev eth0/);
  });

  it("once the host can take it, the route goes in and the node says so", async () => {
    await lab.exec("worker-1", ["ip", "route", "add", "default", "via", "10.30.0.1", "dev", "eth0"]);
    const ms = await waitFor("the refused route to go in", async () => !/refused/.test(await status()), 15_000);
    console.log(`[trefuse] default route back: routes applied ${ms} ms later`);
    expect(await log()).toMatch(/routes applied again after the failure above/);
    // ghost's block, and worker-3's (off the subnet), now go via the gateway.
    expect((await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).match(/ via 10\.30\.0\.1 dev eth0/g)).toHaveLength(2);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
  });
});
