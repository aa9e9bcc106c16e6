// A host that is not a node (the gateway) sends IPIP and VXLAN to worker-1: every
// packet is dropped and counted, none reaches the pod.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { background, useLab } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";
import { vtepMAC } from "../router/dataplane/vtep.js";

const inject = () => path.join(projectRoot(), "dist", "router", "lab", "inject.js");

describe("encapsulated packets from a host that is not a node", () => {
  const lab = useLab("tdrop", "vxlan");

  for (const kind of ["ipip", "vxlan"] as const) {
    it(`${kind.toUpperCase()} from the gateway is dropped, counted as unknown source, never delivered`, async () => {
      const before = await lab.counters("worker-1");
      // Watch pod-1's side: nothing from the stranger may arrive there.
      const watch = background(lab, "pod-1", ["tshark", "-n", "-i", "eth0", "-f", "icmp and src host 10.99.0.1", "-a", "duration:4", "-T", "fields", "-e", "ip.src"], /Capture started/);
      await watch.ready;
      const args =
        kind === "ipip"
          ? ["ipip", "10.30.0.1", "10.30.0.11", "10.99.0.1", "192.168.226.65", "20"]
          : ["vxlan", "10.30.0.11", vtepMAC("worker-1"), "10.99.0.1", "192.168.226.65", "20"];
      const sent = JSON.parse(await lab.exec("gw", [process.execPath, inject(), ...args]));
      expect(sent.sent).toBe(20);
      const seen = (await watch.done).trim();
      const after = await lab.counters("worker-1");
      const dropped = after.drop_unknown_source - before.drop_unknown_source;
      console.log(`[tdrop] ${kind}: sent 20, dropped as unknown source ${dropped}, delivered ${after.tun_tx - before.tun_tx}, seen in pod-1: ${seen ? seen.split("\n").length : 0}`);
      expect(dropped).toBe(20);
      expect(after.tun_tx - before.tun_tx).toBe(0);
      expect(seen).toBe("");
    });
  }

  // One at a time: the socket's pending error is the last one, and each must be read as it
  // comes (source route failed, code 5, became an errno the node once died of).
  it("ICMP destination-unreachable of every code about worker-1's IPIP (a router's say, here forged by the gateway), one at a time: each counted, and worker-1 forwards on", async () => {
    const before = await lab.counters("worker-1");
    const codes = Array.from({ length: 16 }, (_, c) => c).filter((c) => c !== 4); // 4 (fragmentation needed) sets a path MTU: its own test
    for (const code of codes) {
      await lab.exec("gw", [process.execPath, inject(), "icmp-unreachable", "10.30.0.1", "10.30.0.11", "10.30.0.11", "10.30.0.12", String(code)]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const after = await lab.counters("worker-1");
    console.log(`[tdrop] ICMP unreachable codes ${codes.join(",")} sent one at a time; worker-1 counted ${after.network_errors - before.network_errors} network errors`);
    expect(after.network_errors - before.network_errors).toBe(codes.length);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"))).toBe(true);
  });

  it("the same packets from a real node are delivered (the check is on the source, not the shape)", async () => {
    const before = await lab.counters("worker-1");
    await lab.exec("worker-2", [process.execPath, inject(), "vxlan", "10.30.0.11", vtepMAC("worker-1"), "192.168.133.194", "192.168.226.65", "5"]);
    await new Promise((r) => setTimeout(r, 300));
    const after = await lab.counters("worker-1");
    expect(after.tun_tx - before.tun_tx).toBe(5);
  });
});
