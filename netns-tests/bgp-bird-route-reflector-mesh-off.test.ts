// BIRD as the route reflector for every weft node with the node-to-node mesh off, and
// the trap Calico users fall into: turning the mesh off before the reflector sessions
// are Established. weft keeps the mesh (and says so) until a reflector session is up.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { Bird, until } from "./daemons.js";
import { HOSTS, addressOf } from "../router/lab/topology.js";

const RR_AND_MESH_OFF = `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: to-bird-rr}
spec: {peerIP: 10.30.0.1, asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
`;

describe("BIRD as route reflector, mesh off", () => {
  const lab = useLab("tbirdrr", "ipip", { datastore: "sqlite" });
  const status = async (host: string) => JSON.parse(await lab.exec(host, [process.execPath, lab.cli(), "node", "status", "--json", "--control", lab.controlSocket(host)])).bgp.peers as Array<{ address: string; type: string; state: string }>;
  const allReach = async () => Object.values(await lab.reachability()).flatMap((r) => Object.values(r)).every(Boolean);

  it("mesh turned off before the reflector is up: weft warns and keeps the mesh, pods keep reaching", async () => {
    await lab.apply(RR_AND_MESH_OFF);
    await until("worker-1 to warn", async () => /keeping the node-to-node mesh until one is/.test(readFileSync(path.join(lab.dir, "worker-1.log"), "utf8")), 10_000);
    const peers = await status("worker-1");
    expect(peers.filter((p) => p.type === "node-to-node mesh" && p.state === "up")).toHaveLength(3);
    expect(peers.find((p) => p.address === "10.30.0.1")?.state).not.toBe("up");
    expect(await allReach()).toBe(true);
  });

  it("with BIRD reflecting, every node has only the reflector session and pods still reach each other", async () => {
    const bird = new Bird(lab, "gw");
    const neighbors = HOSTS.map((h) => `protocol bgp ${h.short} from node { neighbor ${addressOf(h)} as 64512; }`).join("\n");
    await bird.start(`router id 10.30.0.1;
protocol device {}
template bgp node { local as 64512; direct; passive on; rr client; rr cluster id 10.30.0.1; graceful restart on; ipv4 { import all; export all; }; }
${neighbors}
`);
    for (const h of HOSTS) {
      await until(`${h.name} to drop the mesh for the reflector`, async () => {
        const p = await status(h.name);
        return p.length === 1 && p[0].address === "10.30.0.1" && p[0].state === "up" && p[0].type === "global";
      });
    }
    console.log(`[tbirdrr] birdc show protocols:\n${await bird.birdc(["show", "protocols"])}`);
    await until("routes through the reflector", async () => (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87"])).split("\n").filter((l) => l.includes("dev weft0")).length === 3);
    expect(await allReach()).toBe(true);
  });
});
