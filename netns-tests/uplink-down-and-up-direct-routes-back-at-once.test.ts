// A node's uplink set down and up again (a maintenance, a NIC reset, a network
// manager restarting it): the kernel removes every route through it, weft's direct
// routes among them. CrossSubnet lab: worker-1 reaches worker-2's pods (same subnet)
// by a plain route via eth0. Before, the routes came back at the node's next 30 s
// check (pod-1 reached pod-2 again after 26 s); now within about a second of the link.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

describe("a node's uplink down and up again", () => {
  const lab = useLab("tflap", "crosssubnet", { datastore: "sqlite" });

  it("its direct routes are back within seconds, not at the 30 s check, and pods on its subnet reach each other again", async () => {
    expect(await lab.waitConverged()).toBe(true);
    const direct = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "dev", "eth0"])).trim();
    expect(direct).toMatch(/via 10\.30\.0\.12/);
    // What a host's network manager does: the link goes down and up, the default route is set again.
    await lab.exec("worker-1", ["sh", "-c", "ip link set eth0 down && sleep 1 && ip link set eth0 up && ip route replace default via 10.30.0.1 dev eth0"]);
    const ms = await waitFor("pod-1 reaching pod-2 again", () => lab.ping("pod-1", lab.podAddress("pod-2")), 20_000);
    const back = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "dev", "eth0"])).trim();
    console.log(`[tflap] worker-1's eth0 down 1 s and up: pod-1 reached pod-2 again ${ms} ms after (26 s before, at the 30 s check); its direct routes:\n${back}`);
    expect(ms).toBeLessThan(10_000);
    expect(back).toBe(direct);
    expect(await lab.exec("worker-1", ["tail", "-n", "40", path.join(lab.dir, "worker-1.log")])).toMatch(/eth0 is up again: putting back the routes the kernel removed with it/);
    expect(await lab.ping("pod-1", lab.podAddress("pod-3"))).toBe(true);
  });
});
