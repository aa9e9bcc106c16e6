// Hosts whose iptables FORWARD policy is DROP, as Docker leaves it: pods still reach
// each other, because each node accepts pod traffic (cali* and weft0) in a chain of
// its own jumped to first, as Calico's cali-FORWARD does. Without that jump the policy
// drops them; removed by someone else, it is back at the node's next 30 s check;
// `weft node reset` takes it away.
import { describe, expect, it } from "vitest";
import { useLab, waitFor } from "./helpers.js";

const HOSTS = ["master", "worker-1", "worker-2", "worker-3"];
const JUMP = ["FORWARD", "-m", "comment", "--comment", "weft: pod traffic", "-j", "WEFT-FORWARD"];

describe("pods behind a FORWARD DROP policy", () => {
  const lab = useLab("tfwd", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      for (const h of HOSTS) await l.exec(h, ["iptables", "-P", "FORWARD", "DROP"]);
    },
  });

  it("reach every other pod: the node's chain is jumped to before the policy", async () => {
    const forward = await lab.exec("worker-1", ["iptables", "-S", "FORWARD"]);
    console.log(`[tfwd] worker-1 FORWARD:\n${forward}${await lab.exec("worker-1", ["iptables", "-S", "WEFT-FORWARD"])}`);
    expect(forward.split("\n")[0]).toBe("-P FORWARD DROP");
    expect(forward.split("\n")[1]).toBe('-A FORWARD -m comment --comment "weft: pod traffic" -j WEFT-FORWARD');
    const matrix = await lab.reachability();
    expect(Object.values(matrix).flatMap((row) => Object.values(row)).every(Boolean), JSON.stringify(matrix)).toBe(true);
  });

  it("without the jump the policy drops pod traffic; the node puts it back at its next check", async () => {
    await lab.exec("worker-1", ["iptables", "-D", ...JUMP]);
    expect(await lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 })).toBe(false);
    const ms = await waitFor("the jump back on worker-1", async () => (await lab.exec("worker-1", ["iptables", "-C", ...JUMP]).then(() => true, () => false)) && lab.ping("pod-1", lab.podAddress("pod-2"), { timeoutS: 1 }), 45_000);
    console.log(`[tfwd] jump deleted on worker-1: back, and pod-1 reaches pod-2 again, after ${ms} ms`);
  }, 60_000);

  it("weft node reset removes the chain and the jump", async () => {
    await lab.stopNode("worker-3");
    await lab.exec("worker-3", [process.execPath, lab.cli(), "node", "reset"]);
    const left = await lab.exec("worker-3", ["iptables", "-S"]);
    console.log(`[tfwd] worker-3 after reset:\n${left}`);
    expect(left).not.toContain("WEFT-FORWARD");
  }, 30_000);
});
