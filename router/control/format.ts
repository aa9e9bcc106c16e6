// `weft node status` as calicoctl prints it.
export interface PeerRow {
  address: string;
  type: string;
  state: string;
  since: string | Date;
  info: string;
  filters?: { names: string[]; importRejected: number; exportRejected: number };
}

function center(s: string, w: number): string {
  const left = Math.floor((w - s.length) / 2);
  return " ".repeat(left) + s + " ".repeat(w - s.length - left);
}

const hhmmss = (d: string | Date) => new Date(d).toTimeString().slice(0, 8);

export function peerTable(peers: PeerRow[]): string {
  if (peers.length === 0) return "No IPv4 peers found.\n";
  const head = ["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"];
  const rows = peers.map((p) => [p.address, p.type, p.state, hhmmss(p.since), p.info]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)) + 2);
  const line = `+${w.map((n) => "-".repeat(n)).join("+")}+`;
  const out = [line, `|${head.map((h, i) => center(h, w[i])).join("|")}|`, line];
  for (const r of rows) out.push(`|${r.map((c, i) => ` ${c.padEnd(w[i] - 1)}`).join("|")}|`);
  out.push(line);
  return `${out.join("\n")}\n`;
}

export function nodeStatusText(bgp: { enabled: boolean; peers: PeerRow[] }, status: { datastore?: { url: string; reachable: boolean; reason?: string; refused?: boolean }; applyError?: string | null; addressProblem?: string | null; unreadableRecords?: Record<string, string>; peerProblems?: string[]; pathMTUs?: Record<string, number>; uplink?: { mtu: number }; podDrops?: Record<string, number> } = {}): string {
  const { datastore, applyError, addressProblem, unreadableRecords, peerProblems, pathMTUs, podDrops } = status;
  const parts = ["weft process is running.", ""];
  // Only when it matters: routes then stay as they were at the last answer (BGP's follow BGP).
  if (datastore && !datastore.reachable) {
    const away = datastore.refused ? `refuses weft (${datastore.reason})` : `is not answering${datastore.reason ? ` (${datastore.reason})` : ""}`;
    parts.push(`Datastore ${datastore.url} ${away}: forwarding continues with the last state it gave${bgp.enabled ? "; what BGP brings is still applied" : ""}.`, "");
  }
  if (addressProblem) parts.push(`This node cannot be reached: ${addressProblem}`, "");
  if (applyError) parts.push(`This host refused part of the routes or rules (the rest is applied; retrying): ${applyError}`, "");
  // Routers on the way that take less than the uplink: pods sending there are told so.
  const small = Object.entries(pathMTUs ?? {});
  if (small.length) parts.push(`Smaller path MTUs (from ICMP fragmentation-needed; pods are told the tunnel MTU below them): ${small.map(([node, mtu]) => `${node} ${mtu}`).join(", ")}${status.uplink ? ` (uplink ${status.uplink.mtu})` : ""}`, "");
  // A pod sending what weft drops is either misconfigured or up to no good: worth a line.
  const drops = Object.entries(podDrops ?? {}).filter(([, n]) => n > 0);
  const WHAT: Record<string, string> = { ipip: "IPIP packets", vxlan: "VXLAN packets", spoofed_source: "packets with another's source address" };
  if (drops.length) parts.push(`Dropped from this host's pods: ${drops.map(([k, n]) => `${n} ${WHAT[k] ?? k}`).join(", ")} (weft_pod_packets_dropped_total)`, "");
  const unreadable = Object.keys(unreadableRecords ?? {});
  if (unreadable.length) parts.push(`Datastore records weft cannot read are skipped (fix or delete them): ${unreadable.join(", ")}`, "");
  // Peers configured but not started (an unreadable password secret, a selector that does not parse), or started without a filter they name.
  if (bgp.enabled && peerProblems?.length) parts.push(`BGP peer problems: ${peerProblems.join("; ")}`, "");
  if (!bgp.enabled) parts.push("BGP is off on this node (static routes or the vxlan backend).", "");
  else {
    parts.push("IPv4 BGP status", peerTable(bgp.peers));
    // What BGPFilters hold back, per peer that has them (the table has no column for it).
    const filtered = bgp.peers.filter((p) => p.filters);
    if (filtered.length) {
      const routes = (n: number) => `${n} route${n === 1 ? "" : "s"}`;
      parts.push("BGP filters", ...filtered.map((p) => `${p.address} (${p.filters!.names.join(", ")}): ${routes(p.filters!.importRejected)} received and rejected, ${routes(p.filters!.exportRejected)} not sent`), "");
    }
    parts.push("IPv6 BGP status", "No IPv6 peers found.", "");
  }
  return parts.join("\n");
}
