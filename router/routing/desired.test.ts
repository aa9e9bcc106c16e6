import { describe, expect, it } from "vitest";
import type { KernelRoute } from "../native/iproute.js";
import { desiredState, EXTERNAL_ROUTE_METRIC, InstalledRoutes } from "./desired.js";

/** What to change so that installed becomes desired (a fresh listing each time). */
const diffRoutes = (desired: KernelRoute[], installed: KernelRoute[]) => new InstalledRoutes(installed).diff(desired);

const local = { tunnelDevice: "weft0", uplink: "eth0" };

describe("desired state", () => {
  it("routes encapsulated blocks through the tunnel device onlink and direct ones via the uplink", () => {
    const s = desiredState(local, [
      { cidr: "192.168.133.192/26", node: "worker-2", address: "10.30.0.12", encapsulation: "None" },
      { cidr: "192.168.97.192/26", node: "worker-3", address: "10.30.1.13", encapsulation: "IPIP" },
    ]);
    expect(s.kernel).toEqual([
      { dst: "192.168.133.192/26", gateway: "10.30.0.12", dev: "eth0" },
      { dst: "192.168.97.192/26", gateway: "10.30.1.13", dev: "weft0", onlink: true },
    ]);
    expect(s.fast).toHaveLength(1);
    expect(s.nodes).toHaveLength(2);
  });

  it("keeps the blackhole for the node's own block when a peer announces the same prefix, and says who did (one route per prefix: it would flip at every sync)", () => {
    const own = "192.168.53.64/26";
    const s = desiredState(local, [
      { cidr: own, node: "worker-2", address: "10.30.0.12", encapsulation: "IPIP" },
      { cidr: own, node: "10.30.0.1", address: "10.30.0.1", encapsulation: "None", external: true },
      { cidr: "192.168.53.70/32", node: "worker-2", address: "10.30.0.12", encapsulation: "IPIP" },
    ], [own]);
    expect(s.kernel).toEqual([
      { dst: own, type: "blackhole" },
      { dst: "192.168.53.70/32", gateway: "10.30.0.12", dev: "weft0", onlink: true },
    ]);
    expect(s.fast.map((r) => r.prefix.len)).toEqual([32]); // a borrowed address inside the block still goes to its node
    expect(s.shadowed).toEqual([{ cidr: own, node: "worker-2" }, { cidr: own, node: "10.30.0.1", external: true }]);
    // Installed as wanted: nothing to change on the next sync.
    expect(diffRoutes(s.kernel, s.kernel)).toEqual({ replace: [], remove: [] });
  });

  it("changes only what differs and removes only what it no longer wants", () => {
    const a = { dst: "10.0.0.0/26", gateway: "1.1.1.1", dev: "weft0", onlink: true };
    const b = { dst: "10.0.1.0/26", gateway: "1.1.1.2", dev: "weft0", onlink: true };
    const c = { dst: "10.0.2.0/26", gateway: "1.1.1.3", dev: "weft0", onlink: true };
    const d = diffRoutes([a, { ...b, gateway: "1.1.1.9" }], [a, b, c]);
    expect(d.replace).toEqual([{ ...b, gateway: "1.1.1.9" }]);
    expect(d.remove).toEqual([c]);
  });

  it("leaves out a block that covers a node's underlay address, and says which", () => {
    const s = desiredState({ ...local, address: "10.30.0.11" }, [
      { cidr: "10.30.0.0/26", node: "worker-2", address: "10.30.0.12", encapsulation: "IPIP" },
      { cidr: "10.30.1.0/26", node: "worker-3", address: "10.30.1.13", encapsulation: "VXLAN" },
      { cidr: "192.168.97.192/26", node: "worker-3", address: "10.30.1.13", encapsulation: "IPIP" },
    ]);
    expect(s.kernel.map((r) => r.dst)).toEqual(["192.168.97.192/26"]);
    expect(s.fast).toHaveLength(1);
    expect(s.refused).toEqual([
      { cidr: "10.30.0.0/26", node: "worker-2", covers: "10.30.0.11" },
      { cidr: "10.30.1.0/26", node: "worker-3", covers: "10.30.1.13" },
    ]);
    expect(s.nodes).toHaveLength(2); // their encapsulated packets are still accepted
  });

  it("puts an external peer's route beside the host's own (metric 32, as BIRD does), refuses its default route, and takes no encapsulated packets from it", () => {
    const s = desiredState({ ...local, address: "10.30.0.11" }, [
      { cidr: "10.77.0.0/24", node: "10.30.0.1", address: "10.30.0.1", encapsulation: "None", external: true },
      { cidr: "0.0.0.0/0", node: "10.30.0.1", address: "10.30.0.1", encapsulation: "None", external: true },
    ]);
    expect(s.kernel).toEqual([{ dst: "10.77.0.0/24", gateway: "10.30.0.1", dev: "eth0", metric: EXTERNAL_ROUTE_METRIC }]);
    expect(s.refused).toEqual([{ cidr: "0.0.0.0/0", node: "10.30.0.1", covers: "10.30.0.11", external: true }]);
    expect(s.nodes).toEqual([]);
  });

  it("a pinned route to a multihop peer (BGPPeer reachableBy) goes in through its gateway, though the peer's own routes name its address as next hop; a route covering that address is still refused", () => {
    const s = desiredState({ ...local, address: "10.30.0.10" }, [
      { cidr: "10.30.9.1/32", node: "BGPPeer(tor-lo)", address: "10.30.0.1", encapsulation: "None", external: true, pinned: true },
      { cidr: "10.30.8.0/24", node: "10.30.9.1", address: "10.30.9.1", encapsulation: "None", external: true },
      { cidr: "10.30.9.0/24", node: "10.30.9.1", address: "10.30.9.1", encapsulation: "None", external: true },
    ]);
    expect(s.kernel).toEqual([
      { dst: "10.30.9.1/32", gateway: "10.30.0.1", dev: "eth0", metric: EXTERNAL_ROUTE_METRIC },
      { dst: "10.30.8.0/24", gateway: "10.30.9.1", dev: "eth0", metric: EXTERNAL_ROUTE_METRIC },
    ]);
    expect(s.refused).toEqual([{ cidr: "10.30.9.0/24", node: "10.30.9.1", covers: "10.30.9.1", external: true }]);
  });

  it("a route whose metric changes is added anew and the old one removed (the kernel keeps both otherwise)", () => {
    const node = { dst: "10.77.0.0/24", gateway: "10.30.0.12", dev: "eth0" };
    const peer = { dst: "10.77.0.0/24", gateway: "10.30.0.1", dev: "eth0", metric: EXTERNAL_ROUTE_METRIC };
    expect(diffRoutes([peer], [node])).toEqual({ replace: [peer], remove: [node] });
    expect(diffRoutes([node], [peer])).toEqual({ replace: [node], remove: [peer] });
    expect(diffRoutes([peer], [peer])).toEqual({ replace: [], remove: [] });
  });

  it("the routes installed, remembered between syncs: each sync changes only what differs from the last one's result, a metric change included, without listing the kernel again", () => {
    const a = { dst: "10.0.0.0/26", gateway: "1.1.1.1", dev: "weft0", onlink: true };
    const b = { dst: "10.0.1.0/26", gateway: "1.1.1.2", dev: "weft0", onlink: true };
    const ext = { dst: "10.77.0.0/24", gateway: "10.30.0.1", dev: "eth0", metric: EXTERNAL_ROUTE_METRIC };
    const installed = new InstalledRoutes([a]);
    const step = (want: KernelRoute[]) => {
      const d = installed.diff(want);
      installed.changed(d.replace, d.remove);
      return d;
    };
    expect(step([a, b])).toEqual({ replace: [b], remove: [] });
    expect(step([a, b])).toEqual({ replace: [], remove: [] });
    expect(installed.size).toBe(2);
    // b withdrawn, then the same prefix back from a peer at its metric: the old entry goes.
    expect(step([a])).toEqual({ replace: [], remove: [b] });
    expect(step([a, { ...ext, dst: b.dst }])).toEqual({ replace: [{ ...ext, dst: b.dst }], remove: [] });
    expect(step([a, b])).toEqual({ replace: [b], remove: [{ ...ext, dst: b.dst }] });
    expect(step([a, b])).toEqual({ replace: [], remove: [] });
    expect(installed.size).toBe(2);
    // What the kernel's listing lacks, or has otherwise: someone else's doing.
    const listed = new InstalledRoutes([{ ...a, gateway: "1.1.1.7" }]);
    expect(installed.missingFrom(listed)).toEqual([a, b]);
    expect(installed.missingFrom(new InstalledRoutes([a, b]))).toEqual([]);
    // Removals held back (graceful restart): still installed, offered again at the next diff.
    const held = installed.diff([a]);
    installed.changed(held.replace, []);
    expect(installed.diff([a])).toEqual({ replace: [], remove: [b] });
  });
});
