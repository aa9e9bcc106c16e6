// The network configuration weft-cni reads on stdin (one plugin of a conflist).
import { z } from "zod";
import { CNI, CniError } from "./errors.js";
import { nodeName } from "../resources/validate.js";
import { calicoLogLevel } from "../resources/kinds.js";
import { etcdEndpointsURL } from "../store/store.js";

// 0.3.x: what Calico's own conflist and many older ones still say.
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/** ipam.type values that mean weft's own IPAM (Calico's name, so its conflists work). */
const IPAM_TYPES = ["calico-ipam", "weft-ipam"];

const config = z.object({
  cniVersion: z.string(),
  name: z.string().min(1),
  type: z.string().min(1),
  datastore: z.string().min(1).optional(),
  nodename: z.string().min(1).optional(),
  log_file: z.string().optional(),
  // Calico's names: log_file_path (same as log_file) and log_level.
  log_file_path: z.string().optional(),
  log_level: z.string().optional(),
  mtu: z.number().int().min(576).max(65535).optional(),
  // Calico's calico-ipam section: which pools (names or CIDRs) this network takes from.
  ipam: z.object({
    type: z.string().min(1),
    ipv4_pools: z.array(z.string().min(1)).optional(),
    assign_ipv4: z.enum(["true", "false"]).optional(),
    assign_ipv6: z.enum(["true", "false"]).optional(),
  }).passthrough().optional(),
  // etcds:// certificates, as Calico's CNI configuration names them (else ETCD_*_FILE).
  etcd_ca_cert_file: z.string().min(1).optional(),
  etcd_cert_file: z.string().min(1).optional(),
  etcd_key_file: z.string().min(1).optional(),
  // An etcd user, for etcd with authentication on (else ETCD_USERNAME and ETCD_PASSWORD).
  etcd_username: z.string().min(1).optional(),
  etcd_password: z.string().min(1).optional(),
  // Calico's own names for where the datastore is, so its configurations work unchanged.
  etcd_endpoints: z.string().min(1).optional(),
  datastore_type: z.string().min(1).optional(),
  // Runtime-supplied: the "ips" capability (a static address, as podman --ip asks for it).
  runtimeConfig: z.object({ ips: z.array(z.string()).optional() }).passthrough().optional(),
  // Runtime-supplied (CNI 1.1 GC): the attachments that still exist.
  "cni.dev/valid-attachments": z.array(z.object({ containerID: z.string(), ifname: z.string() }).passthrough()).optional(),
}).passthrough();

export type NetConf = z.infer<typeof config> & { datastore: string; nodename: string; logLevel: string; /** nodename came from the configuration, not the hostname */ nodenameGiven: boolean };

/** Calico's etcd_endpoints as a datastore URL; a bad one is configuration. */
function fromEtcdEndpoints(endpoints: string): string {
  try {
    return etcdEndpointsURL(endpoints);
  } catch (err) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `etcd_endpoints: ${(err as Error).message}`);
  }
}

export function parseNetConf(stdin: string, defaults: { datastore: string }): NetConf {
  let doc: unknown;
  try {
    doc = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI.DECODE, "the network configuration on stdin is not valid JSON", (err as Error).message);
  }
  const r = config.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    const field = i.path.join(".") || "(top level)";
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `${field}: ${/received undefined/.test(i.message) ? "is required" : i.message}`);
  }
  if (!SUPPORTED_VERSIONS.includes(r.data.cniVersion)) {
    throw new CniError(CNI.INCOMPATIBLE_VERSION, "Incompatible CNI version", `cniVersion ${r.data.cniVersion} is not one of ${SUPPORTED_VERSIONS.join(", ")}`);
  }
  const ipam = r.data.ipam;
  if (ipam && !IPAM_TYPES.includes(ipam.type)) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `ipam.type ${ipam.type}: weft-cni assigns addresses from weft's IP pools itself; set type to ${IPAM_TYPES.join(" or ")} (ipv4_pools picks pools) or leave ipam out`);
  }
  if (ipam?.assign_ipv4 === "false" || ipam?.assign_ipv6 === "true") {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `ipam: weft assigns one IPv4 address per container; assign_ipv4 "false" and assign_ipv6 "true" are not supported`);
  }
  if (r.data.datastore_type !== undefined && r.data.datastore_type !== "etcdv3") {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `datastore_type ${r.data.datastore_type}: weft keeps its state in SQLite or etcd, not in Kubernetes; set datastore (sqlite:PATH or etcd://HOST:PORT) or etcd_endpoints`);
  }
  if (r.data.datastore !== undefined && r.data.etcd_endpoints !== undefined) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", "datastore and etcd_endpoints both say where the datastore is: keep one");
  }
  const ds = r.data.datastore ?? (r.data.etcd_endpoints !== undefined ? fromEtcdEndpoints(r.data.etcd_endpoints) : defaults.datastore);
  if (!/^(sqlite:.+|etcds?:\/\/.+)$/.test(ds)) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `datastore "${ds}": use sqlite:PATH, etcd://HOST:PORT or etcds://HOST:PORT`);
  }
  let nodename: string;
  try {
    nodename = nodeName(r.data.nodename);
  } catch (err) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `nodename: ${(err as Error).message}`);
  }
  if (r.data.log_file !== undefined && r.data.log_file_path !== undefined && r.data.log_file !== r.data.log_file_path) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", "log_file and log_file_path both name the log file: keep one");
  }
  const level = r.data.log_level === undefined ? "info" : calicoLogLevel(r.data.log_level);
  if (level === undefined) {
    throw new CniError(CNI.INVALID_CONFIG, "Invalid Configuration", `log_level "${r.data.log_level}": use debug, info, warning or error`);
  }
  return { ...r.data, datastore: ds, nodename, nodenameGiven: r.data.nodename !== undefined, log_file: r.data.log_file ?? r.data.log_file_path, logLevel: level };
}
