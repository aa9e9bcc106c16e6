// The IPv4 pool a node creates when the datastore has none, as calico-node does: its
// CALICO_IPV4POOL_* variables set the fields and NO_DEFAULT_POOLS=true creates none.
// Without CALICO_IPV4POOL_CIDR the pool is 192.168.0.0/16, or, when a host address lies
// in that, the first 172.16-31.0.0/16 that holds none (Calico's choice). One difference:
// ipipMode defaults to Always (what calico.yaml sets) unless VXLAN is asked for.
// The variables are checked at every start, through the IPPool validator, so a typo
// stops the node on the first host it reaches, not only on the one that creates the pool.
import { contains, parseCIDR, parseIPv4 } from "../dataplane/addr.js";
import { API_VERSION, type IPPool } from "../resources/kinds.js";
import { parseResource, ValidationError } from "../resources/validate.js";
import { ConfigError } from "./config.js";
import { calicoBool as bool } from "./env.js";

export const DEFAULT_POOL_NAME = "default-ipv4-ippool";
const PREFERRED = "192.168.0.0/16";

/** The variables, with what each sets (for `weft node run --help`). */
export const POOL_VARIABLES: Array<[string, string]> = [
  ["CALICO_IPV4POOL_CIDR", `the pool's CIDR (default ${PREFERRED}, or the first 172.16-31.0.0/16 holding no host address)`],
  ["CALICO_IPV4POOL_BLOCK_SIZE", "block size, 20-32 (default 26)"],
  ["CALICO_IPV4POOL_IPIP", "Always, CrossSubnet or Never (default Always, Never when VXLAN is set)"],
  ["CALICO_IPV4POOL_VXLAN", "Always, CrossSubnet or Never (default Never)"],
  ["CALICO_IPV4POOL_NAT_OUTGOING", "true or false (default true)"],
  ["CALICO_IPV4POOL_NODE_SELECTOR", "which nodes take blocks from it (default all())"],
  ["CALICO_IPV4POOL_DISABLE_BGP_EXPORT", "true or false (default false)"],
  ["NO_DEFAULT_POOLS", "true: create no pool (apply your own)"],
];

/** An encapsulation mode as Calico reads it: any case; off and cross-subnet also taken. */
function mode(name: string, text: string | undefined): "Never" | "Always" | "CrossSubnet" | undefined {
  if (text === undefined || text === "") return undefined;
  const modes = { never: "Never", off: "Never", always: "Always", crosssubnet: "CrossSubnet", "cross-subnet": "CrossSubnet" } as const;
  const word = text.toLowerCase();
  const m = Object.hasOwn(modes, word) ? modes[word as keyof typeof modes] : undefined;
  if (!m) throw new ConfigError(`${name}: expected Always, CrossSubnet or Never, not "${text}"`);
  return m;
}

/** Which variable a validator complaint is about. */
const FIELD_VARIABLE: Record<string, string> = {
  "spec.cidr": "CALICO_IPV4POOL_CIDR",
  "spec.blockSize": "CALICO_IPV4POOL_BLOCK_SIZE",
  "spec.nodeSelector": "CALICO_IPV4POOL_NODE_SELECTOR",
  spec: "CALICO_IPV4POOL_IPIP and CALICO_IPV4POOL_VXLAN",
};

/**
 * The pool to create when there is none, or undefined for NO_DEFAULT_POOLS=true.
 * hostAddresses: this host's IPv4 addresses (the default CIDR avoids them).
 */
export function defaultPool(env: NodeJS.ProcessEnv, hostAddresses: string[]): IPPool | undefined {
  const cidrVar = env.CALICO_IPV4POOL_CIDR?.trim();
  if (bool("NO_DEFAULT_POOLS", env.NO_DEFAULT_POOLS, false)) {
    if (cidrVar) throw new ConfigError("NO_DEFAULT_POOLS=true and CALICO_IPV4POOL_CIDR are both set: give one (no pool, or that pool)");
    return undefined;
  }
  const blockText = env.CALICO_IPV4POOL_BLOCK_SIZE?.trim();
  if (blockText && !/^\d{1,3}$/.test(blockText)) throw new ConfigError(`CALICO_IPV4POOL_BLOCK_SIZE: expected a whole number from 20 to 32, not "${blockText}"`);
  const vxlanMode = mode("CALICO_IPV4POOL_VXLAN", env.CALICO_IPV4POOL_VXLAN) ?? "Never";
  const ipipMode = mode("CALICO_IPV4POOL_IPIP", env.CALICO_IPV4POOL_IPIP) ?? (vxlanMode === "Never" ? "Always" : "Never");
  let cidr = cidrVar || PREFERRED;
  if (!cidrVar) {
    const held = (c: string) => hostAddresses.some((a) => contains(parseCIDR(c)!, parseIPv4(a.split("/")[0])!));
    const fallbacks = Array.from({ length: 16 }, (_, i) => `172.${16 + i}.0.0/16`);
    // None free: the preferred one, and the node's own check says what is wrong.
    cidr = [PREFERRED, ...fallbacks].find((c) => !held(c)) ?? PREFERRED;
  } else if (parseCIDR(cidr, false) === undefined) {
    throw new ConfigError(`CALICO_IPV4POOL_CIDR: "${cidr}" is not an IPv4 CIDR such as 10.244.0.0/16`);
  }
  const manifest = {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name: DEFAULT_POOL_NAME },
    spec: {
      cidr,
      blockSize: blockText ? Number(blockText) : 26,
      ipipMode,
      vxlanMode,
      natOutgoing: bool("CALICO_IPV4POOL_NAT_OUTGOING", env.CALICO_IPV4POOL_NAT_OUTGOING, true),
      nodeSelector: env.CALICO_IPV4POOL_NODE_SELECTOR?.trim() || "all()",
      disableBGPExport: bool("CALICO_IPV4POOL_DISABLE_BGP_EXPORT", env.CALICO_IPV4POOL_DISABLE_BGP_EXPORT, false),
    },
  };
  try {
    return parseResource(manifest) as IPPool;
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw new ConfigError(`${FIELD_VARIABLE[err.field] ?? "CALICO_IPV4POOL_*"}: ${err.reason}`);
  }
}
