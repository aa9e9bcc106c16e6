// Hosts with reverse-path filtering on: worker-1 loose (net.ipv4.conf.all.rp_filter = 2,
// Ubuntu's default), the others strict (1, as CIS benchmarks ask), behind a router with a
// 1400-byte MTU toward worker-3 (whose own link is 1400 too). weft answers a pod's
// oversized packet with ICMP fragmentation-needed written into weft0; from the node's
// own address, which the kernel routes through eth0, either mode dropped it (counted in
// IPReversePathFilter) and the transfer stalled for good. A node on a datastore now
// sends it from weft0's tunnel address, which is routed through weft0.
import { describe, expect, it } from "vitest";
import { transfer, useLab } from "./helpers.js";

const HOSTS = ["master", "worker-1", "worker-2", "worker-3"];
const MB20 = 20 * 1024 * 1024;

describe("hosts with loose or strict reverse-path filtering, a router with a smaller MTU on the way", () => {
  const lab = useLab("trpf", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      for (const h of HOSTS) {
        const mode = h === "worker-1" ? 2 : 1;
        await l.exec(h, ["sysctl", "-qw", `net.ipv4.conf.all.rp_filter=${mode}`, `net.ipv4.conf.default.rp_filter=${mode}`]);
      }
      for (const [host, dev] of [["gw", "v-w3"], ["gw", "brB"], ["worker-3", "eth0"]]) await l.exec(host, ["ip", "link", "set", dev, "mtu", "1400"]);
    },
  });
  // -s: no history file (nstat would leave one in /tmp).
  const rpDrops = async (host: string) => Number(/IPReversePathFilter\s+(\d+)/.exec(await lab.exec(host, ["nstat", "-asz", "TcpExtIPReversePathFilter"]))?.[1] ?? 0);

  // pod-2 never heard from pod-3, so it offers pod-3 its full MSS.
  for (const [from, to, host, why] of [
    ["pod-1", "pod-3", "worker-1", "rp_filter 2, the gateway's ICMP"],
    ["pod-3", "pod-2", "worker-3", "rp_filter 1, its own link's refusal"],
  ] as const) {
    it(`${from} -> ${to}: ${host} (${why}) answers ${from} with fragmentation-needed from its tunnel address, the kernel lets it in, ${from} learns the path MTU; 20 MB arrive whole`, async () => {
      const dropsBefore = await rpDrops(host);
      const r = await transfer(lab, from, to, lab.podAddress(to), MB20);
      const s = (await lab.nodeStatus(host)) as { pathMTUs: Record<string, number>; counters: Record<string, number> };
      const dropped = (await rpDrops(host)) - dropsBefore;
      const route = await lab.exec(from, ["ip", "route", "get", lab.podAddress(to)]);
      console.log(`[trpf] ${from} -> ${to} (${host}: ${why}): ${r.mbps.toFixed(0)} Mbit/s; fragmentation-needed sent ${s.counters.icmp_frag_needed_sent}, dropped by reverse-path filtering ${dropped}; ${from}: ${route.split("\n").join(" ").replace(/\s+/g, " ").trim()}`);
      expect(r.received.bytes).toBe(MB20);
      expect(r.received.sha256).toBe(r.sent.sha256);
      expect(Object.values(s.pathMTUs)).toEqual([1400]);
      expect(s.counters.icmp_frag_needed_sent).toBeGreaterThan(0);
      expect(dropped).toBe(0);
      expect(route).toMatch(/mtu 1380/);
    });
  }
});
