// Manifests in and out: YAML or JSON, one or many documents, Calico's List form.
import { parseAllDocuments, stringify } from "yaml";
import { API_VERSION, type Kind, type Resource } from "./kinds.js";
import { parseResource, parseResourceId, ValidationError } from "./validate.js";

export class ManifestError extends Error {}

/** Parses and validates every document; throws naming the source and document.
 * idOnly: only what names each resource is checked (for delete). */
export function parseManifests(text: string, source: string, opts: { idOnly?: boolean } = {}): Resource[] {
  const docs = parseAllDocuments(text);
  const out: Resource[] = [];
  let n = 0;
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    n++;
    if (d.errors.length) throw new ManifestError(`${source}: document ${n}: not valid YAML: ${d.errors[0].message.split("\n")[0]}`);
    let value: unknown;
    try {
      // Aliases resolve here: one that names no anchor, or so many that they would
      // exhaust memory (an alias bomb), is the file's fault.
      value = d.toJS();
    } catch (err) {
      throw new ManifestError(`${source}: document ${n}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (value === null || value === undefined) continue;
    const items = isList(value) ? value.items : [value];
    for (const item of items) {
      try {
        if (opts.idOnly) {
          const id = parseResourceId(item);
          out.push({ apiVersion: API_VERSION, kind: id.kind, metadata: id.metadata, spec: {} } as Resource);
        } else out.push(parseResource(item));
      } catch (err) {
        if (err instanceof ValidationError) throw new ManifestError(`${source}: document ${n}: ${err.message}`);
        throw err;
      }
    }
  }
  if (out.length === 0) throw new ManifestError(`${source}: no resources found`);
  return out;
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === "object" && v !== null && typeof (v as { kind?: unknown }).kind === "string" && (v as { kind: string }).kind.endsWith("List") && Array.isArray((v as { items?: unknown }).items);
}

/** What `get -o yaml|json` prints: the resource itself, or a list for several (an IPPoolList; a List when kinds are mixed). */
export function render(resources: Resource[], kind: Kind | undefined, format: "yaml" | "json", single: boolean): string {
  const doc = single ? resources[0] : { apiVersion: API_VERSION, kind: `${kind ?? ""}List`, items: resources };
  return format === "json" ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc);
}

const COLUMNS: Record<Kind, { narrow: string[]; wide: string[] }> = {
  IPPool: { narrow: ["NAME", "CIDR", "SELECTOR"], wide: ["NAME", "CIDR", "NAT", "IPIPMODE", "VXLANMODE", "DISABLED", "DISABLEBGPEXPORT", "SELECTOR"] },
  Node: { narrow: ["NAME"], wide: ["NAME", "ASN", "IPV4", "VXLANMAC"] },
  BGPConfiguration: { narrow: ["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"], wide: ["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER", "LISTENPORT"] },
  BGPPeer: { narrow: ["NAME", "PEERIP", "NODE", "ASN"], wide: ["NAME", "PEERIP", "NODE", "ASN", "NODESELECTOR", "PEERSELECTOR", "FILTERS"] },
  IPReservation: { narrow: ["NAME", "RESERVEDCIDRS"], wide: ["NAME", "RESERVEDCIDRS"] },
  IPAMConfiguration: { narrow: ["NAME", "STRICTAFFINITY", "MAXBLOCKSPERHOST"], wide: ["NAME", "STRICTAFFINITY", "MAXBLOCKSPERHOST"] },
  // The rule lists' lengths (the rules themselves: -o yaml).
  BGPFilter: { narrow: ["NAME"], wide: ["NAME", "EXPORTV4", "IMPORTV4", "EXPORTV6", "IMPORTV6"] },
};

function cell(r: Resource, col: string): string {
  const s = r.spec as Record<string, any>;
  switch (col) {
    case "NAME": return r.metadata.name;
    case "CIDR": return s.cidr;
    case "SELECTOR": case "NODESELECTOR": return s.nodeSelector ?? "";
    case "PEERSELECTOR": return s.peerSelector ?? "";
    case "NAT": return String(s.natOutgoing);
    case "IPIPMODE": return s.ipipMode;
    case "VXLANMODE": return s.vxlanMode;
    case "DISABLED": return String(s.disabled);
    case "DISABLEBGPEXPORT": return String(s.disableBGPExport);
    case "ASN": return String(s.asNumber ?? s.bgp?.asNumber ?? "(64512)");
    case "IPV4": return s.bgp?.ipv4Address ?? "";
    case "VXLANMAC": return s.vxlanTunnelMACAddr ?? "";
    case "LOGSEVERITY": return s.logSeverityScreen ?? "Info";
    case "MESHENABLED": return String(s.nodeToNodeMeshEnabled ?? true);
    case "ASNUMBER": return String(s.asNumber ?? 64512);
    case "LISTENPORT": return String(s.listenPort ?? 179);
    case "PEERIP": return s.peerIP ?? "";
    case "NODE": return s.node ?? "(global)";
    case "RESERVEDCIDRS": return (s.reservedCIDRs as string[]).join(",");
    case "STRICTAFFINITY": return String(s.strictAffinity ?? false);
    case "MAXBLOCKSPERHOST": return String(s.maxBlocksPerHost ?? 0);
    case "FILTERS": return (s.filters as string[] | undefined)?.join(",") ?? "";
    case "EXPORTV4": case "IMPORTV4": case "EXPORTV6": case "IMPORTV6": {
      const list = { EXPORTV4: "exportV4", IMPORTV4: "importV4", EXPORTV6: "exportV6", IMPORTV6: "importV6" }[col];
      const n = (s[list] as unknown[] | undefined)?.length ?? 0;
      return `${n} rule${n === 1 ? "" : "s"}`;
    }
    default: return "";
  }
}

export function table(resources: Resource[], kind: Kind, wide: boolean): string {
  const cols = wide ? COLUMNS[kind].wide : COLUMNS[kind].narrow;
  const rows = [cols, ...resources.map((r) => cols.map((c) => cell(r, c)))];
  const widths = cols.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("   ").trimEnd()).join("\n")}\n`;
}
