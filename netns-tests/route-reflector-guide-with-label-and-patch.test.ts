// Calico's route-reflector guide, step by step with weft's label and patch, and one of
// weft's own nodes as the reflector: label master route-reflector=true, give it a
// cluster ID, peer every node with the reflectors, then turn the mesh off. The workers
// end with one session each (to master), and every pod still reaches every other.
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";
import { controlGet } from "../router/control/client.js";

type Peers = { peers: Array<{ address: string; type: string; state: string }> };

describe("Calico's route-reflector guide with weft label and patch", () => {
  const lab = useLab("trrg", "ipip", { datastore: "sqlite" });
  const peers = async (host: string) => (JSON.parse(await controlGet(lab.controlSocket(host), "/bgp")) as Peers).peers;
  const up = (p: Peers["peers"]) => p.filter((x) => x.state === "up").map((x) => `${x.address} ${x.type}`).sort();

  it("label and patch make master a reflector; a BGPPeer peers every node with it", async () => {
    expect(await lab.weft(["label", "node", "master", "route-reflector=true"])).toBe("Node(master): label route-reflector=true set\n");
    expect(await lab.weft(["patch", "node", "master", "-p", '{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}'])).toBe("Node(master) patched\n");
    await lab.apply("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer-with-route-reflectors\nspec:\n  nodeSelector: all()\n  peerSelector: route-reflector == 'true'\n");
    const ms = await waitFor("worker-1's session to master as a BGPPeer", async () => up(await peers("worker-1")).includes("10.30.0.10 node specific"));
    console.log(`[trrg] worker-1 peers after the BGPPeer (${ms} ms): ${up(await peers("worker-1")).join(", ")}`);
  }, 40_000);

  it("with the mesh off, each worker keeps one session, to the reflector, and pods still reach each other", async () => {
    await lab.apply("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: true\n");
    expect(await lab.weft(["patch", "bgpconfiguration", "default", "-p", '{"spec": {"nodeToNodeMeshEnabled": false}}'])).toBe("BGPConfiguration(default) patched\n");
    for (const w of ["worker-1", "worker-2", "worker-3"]) {
      const ms = await waitFor(`${w} down to its reflector session`, async () => up(await peers(w)).join() === "10.30.0.10 node specific");
      console.log(`[trrg] ${w}: ${up(await peers(w)).join(", ")} (${ms} ms)`);
    }
    expect(up(await peers("master"))).toEqual(["10.30.0.11 node specific", "10.30.0.12 node specific", "10.30.1.13 node specific"]);
    const m = await lab.reachability();
    expect(Object.values(m).flatMap((row) => Object.values(row)).every(Boolean), JSON.stringify(m)).toBe(true);
  }, 60_000);
});
