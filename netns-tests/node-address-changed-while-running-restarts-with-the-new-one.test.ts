// A host's address changed while its node runs (a DHCP lease renewed with another
// address): the Node kept the old one, so other nodes kept peering with and tunnelling
// to an address no host had, and worker-1's pods were cut off without a word until
// someone restarted the node. Now the node sees its address leave (netlink), and after
// a 10 s grace, autodetection finding another, exits 1 saying so; started again (its
// service manager restarts it on failure), it registers the new address and the pods
// reach each other again.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

describe("a node whose host's address changed while it ran", () => {
  const lab = useLab("taddr", "ipip", { datastore: "sqlite" });

  it("exits 1 naming the new address after the grace period; started again, it registers that address and pods reach its pods again", async () => {
    expect(await lab.waitConverged()).toBe(true);
    expect(lab.nodeRunning("worker-1")).toBe(true);
    const t0 = Date.now();
    await lab.exec("worker-1", ["sh", "-c", "ip addr del 10.30.0.11/24 dev eth0 && ip addr add 10.30.0.21/24 dev eth0 && ip route replace default via 10.30.0.1 dev eth0"]);
    const exitedMs = await waitFor("worker-1's node exiting", () => !lab.nodeRunning("worker-1"), 30_000);
    const log = readFileSync(path.join(lab.dir, "worker-1.log"), "utf8");
    expect(log).toMatch(/this node's address 10\.30\.0\.11 is gone from eth0 and eth0 has 10\.30\.0\.21\/24 \(the default route's interface\): exiting for the service manager to start the node again with it/);
    await lab.restartNode("worker-1");
    const reached = await waitFor("pod-2 reaching pod-1 again", () => lab.ping("pod-2", lab.podAddress("pod-1"), { timeoutS: 1 }), 30_000);
    console.log(`[taddr] worker-1's address 10.30.0.11 -> 10.30.0.21: its node exited ${exitedMs} ms after; started again, pod-2 reached pod-1 ${reached} ms after (before: never, until someone restarted the node)`);
    expect(await lab.weft(["get", "node", "worker-1", "-o", "yaml"])).toMatch(/ipv4Address: 10\.30\.0\.21\/24/);
    // worker-3 (across the gateway) may take a moment longer to peer with the new address.
    await waitFor("pod-1 reaching pod-3 across the gateway", () => lab.ping("pod-1", lab.podAddress("pod-3"), { timeoutS: 1 }), 20_000);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});
