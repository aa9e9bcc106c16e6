// What `weft lab up` and `weft lab status` print: each node, its routes, and who reaches whom.
import { HOSTS, PODS } from "./topology.js";
import type { Lab } from "./lab.js";
import { controlGet } from "../control/client.js";
import { peerTable } from "../control/format.js";

export async function printLab(lab: Lab, tookMs?: number): Promise<string> {
  const out: string[] = [];
  out.push(`lab "${lab.prefix}" (${lab.mode})${tookMs !== undefined ? `, up in ${(tookMs / 1000).toFixed(1)} s` : ""}`);
  for (const h of HOSTS) {
    let line = `\n== ${h.name} ${h.address}`;
    try {
      const s = (await lab.nodeStatus(h.name)) as { tunnel: { device: string; mtu: number; vtepMAC: string; address?: string } };
      line += `  weft node up: ${s.tunnel.device} mtu ${s.tunnel.mtu}${s.tunnel.address ? ` address ${s.tunnel.address}` : ""}, VTEP ${s.tunnel.vtepMAC}`;
    } catch {
      line += "  weft node not answering";
    }
    out.push(line);
    try {
      const bgp = JSON.parse(await controlGet(lab.controlSocket(h.name), "/bgp")) as { enabled: boolean; peers: Parameters<typeof peerTable>[0] };
      if (bgp.enabled) out.push(...peerTable(bgp.peers).trimEnd().split("\n").map((l) => `   ${l}`));
    } catch {
      /* node not answering: said above */
    }
    const routes = await lab.exec(h.name, ["ip", "route"], { allowFail: true });
    out.push(...routes.trim().split("\n").map((r) => `   ${r}`));
  }
  out.push("\npods:");
  for (const p of PODS) out.push(`  ${p.name}  ${lab.podAddress(p.name).padEnd(16)} on ${p.host}`);
  const m = await lab.reachability();
  out.push("\nreachability (ping, pod x pod):");
  out.push(`          ${PODS.map((p) => p.name.padEnd(7)).join(" ")}`);
  for (const a of PODS) {
    out.push(`  ${a.name.padEnd(7)} ${PODS.map((b) => (a === b ? "-" : m[a.name][b.name] ? "ok" : "FAIL").padEnd(7)).join(" ")}`);
  }
  return `${out.join("\n")}\n`;
}
