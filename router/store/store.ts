// The datastore: one interface with revisions, create / compare-and-swap update /
// delete, list by prefix and watch from a revision. Values are JSON text.
import { existsSync, readFileSync } from "node:fs";

export interface KV {
  key: string;
  value: string;
  /** Revision of the last change to this key (compare-and-swap token). */
  modRevision: number;
}

/**
 * Records weft cannot read (not JSON, or not the shape weft writes: a hand edit in
 * etcd, another tool sharing the keyspace): key -> why. Readers skip them rather than
 * let one such record stop every read; the node warns about them.
 */
export const unreadableRecords = new Map<string, string>();

/** A JSON object: not null, not a list. */
export const isJSONObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A record's value as T if it is a JSON object that passes check; else undefined, noted in unreadableRecords. */
export function readRecord<T>(kv: KV, check: (v: Record<string, unknown>) => boolean): T | undefined {
  let v: unknown;
  try {
    v = JSON.parse(kv.value);
  } catch (err) {
    unreadableRecords.set(kv.key, `not JSON (${(err as Error).message})`);
    return undefined;
  }
  if (!isJSONObject(v) || !check(v)) {
    unreadableRecords.set(kv.key, "not the shape weft writes there");
    return undefined;
  }
  unreadableRecords.delete(kv.key);
  return v as T;
}

/** readRecord over a listing of prefix: what it can read; records under prefix that are gone are forgotten. */
export function readRecords<T>(prefix: string, items: KV[], check: (v: Record<string, unknown>) => boolean): Array<{ kv: KV; value: T }> {
  const listed = new Set(items.map((kv) => kv.key));
  for (const k of unreadableRecords.keys()) if (k.startsWith(prefix) && !listed.has(k)) unreadableRecords.delete(k);
  return items.flatMap((kv) => {
    const value = readRecord<T>(kv, check);
    return value === undefined ? [] : [{ kv, value }];
  });
}

export interface WatchEvent {
  type: "put" | "delete";
  key: string;
  value?: string;
  revision: number;
}

export type Op =
  | { op: "create"; key: string; value: string }
  | { op: "update"; key: string; value: string; modRevision?: number } // no modRevision: upsert
  | { op: "delete"; key: string; modRevision?: number };

export interface Watch {
  stop(): void;
}

export interface Datastore {
  /** What the URL named, for messages. */
  readonly description: string;
  get(key: string): Promise<KV | undefined>;
  list(prefix: string): Promise<{ items: KV[]; revision: number }>;
  /** Applies all ops atomically or none; throws ConflictError or NotFoundError. */
  txn(ops: Op[]): Promise<number>;
  /** Calls onEvents for every change under prefix after revision; onError when the
   * connection breaks (the caller resyncs with list and watches again). */
  watch(prefix: string, afterRevision: number, onEvents: (events: WatchEvent[]) => void, onError: (err: Error) => void): Watch;
  /** Drops the history before revision (etcd keeps every revision until told; SQLite
   * keeps a bounded log and has no such call). False: it was compacted past it already. */
  compact?(revision: number): Promise<boolean>;
  close(): Promise<void>;
  /** Set by a long-running user (the node): told when the store connects anew in another way (etcd's certificate files renewed). */
  notify?: (message: string, fields: Record<string, unknown>) => void;
}

/** A compare-and-swap lost: someone changed the key first (or it already exists). */
export class ConflictError extends Error {
  constructor(readonly key: string, message = `${key} was changed by someone else; read it again and retry`) {
    super(message);
  }
}

export class NotFoundError extends Error {
  constructor(readonly key: string) {
    super(`${key} does not exist`);
  }
}

export class DatastoreURLError extends Error {}

/** How long an etcd read or write waits for an answer before it fails (Calico's client: 10 s). */
export const CALL_DEADLINE_MS = 5000;

/** Where weft keeps its records in etcd (what a role for weft must be granted). */
export const WEFT_PREFIX = "/weft/";

const lastError = (message: string) => /Last error: (?:Error: )?([\s\S]*?)\.?\s*(?:\(\d{4}-\d\d-\d\dT[^)]*\)\.?\s*)?(?:Resolution note|$)/.exec(message)?.[1]?.trim();

/**
 * If err is one that waiting does not fix, only configuration (TLS, etcd's users and
 * roles, a server that is not etcd), what to fix, said in terms of what to set.
 */
export function misconfigured(err: unknown): string | undefined {
  const message = (err as { message?: string })?.message ?? "";
  if (/etcdserver: user name is empty/.test(message)) return "etcd has authentication on: give weft an etcd user (ETCD_USERNAME and ETCD_PASSWORD), or a client certificate whose common name is one";
  if (/etcdserver: authentication failed, invalid user ID or password/.test(message)) return "etcd refused the user name or password (ETCD_USERNAME, ETCD_PASSWORD)";
  if (/etcdserver: authentication is not enabled/.test(message)) return "an etcd user is set (ETCD_USERNAME), but etcd has authentication off: unset it, or turn etcd's authentication on";
  if (/etcdserver: permission denied/.test(message)) return `etcd's user for weft may not read or write weft's records: grant its role readwrite on the prefix ${WEFT_PREFIX} (etcdctl role grant-permission ROLE --prefix=true readwrite ${WEFT_PREFIX})`;
  const http = /^12 UNIMPLEMENTED: Received HTTP status code (\d+)/.exec(message);
  if (http) return `the server there is not etcd (it answered etcd's calls with HTTP ${http[1]})`;
  const last = /^14 UNAVAILABLE/.test(message) ? lastError(message) : undefined;
  if (last && /alert bad certificate|alert certificate required|SSL alert number (42|116)/.test(last)) return "TLS: etcd refused the connection without an accepted client certificate (ETCD_CERT_FILE, ETCD_KEY_FILE)";
  if (last && /unable to verify|self.signed certificate|unable to get local issuer/.test(last)) return `TLS: etcd's certificate is not signed by a CA we trust (ETCD_CA_CERT_FILE): ${last}`;
  if (last && /wrong version number|packet length too long/.test(last)) return "TLS: the server does not speak TLS there (etcd:// instead of etcds://?)";
  return undefined;
}

/**
 * If err says the datastore did not answer (etcd's client reports that as gRPC status
 * 14 with a long text), the short reason, e.g. "connect ECONNREFUSED 10.0.0.1:2379".
 * Errors that configuration must fix are misconfigured()'s, not this.
 */
export function unreachable(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: string; isBrokenCircuitError?: boolean };
  // After repeated failures the client stops trying a host for a few seconds.
  if (e?.isBrokenCircuitError) return "the client is pausing after repeated failures";
  // Packets dropped on the way (a partition, a firewall): no refusal, no answer.
  if (e?.code === 4 || /^4 DEADLINE_EXCEEDED/.test(e?.message ?? "")) {
    // Calls wait CALL_DEADLINE_MS, signing in less: the client's message says how long.
    const waited = Number(/Deadline exceeded after (\d+(?:\.\d+)?)s/.exec(e?.message ?? "")?.[1] ?? CALL_DEADLINE_MS / 1000);
    return `no answer within ${Math.round(waited)} s`;
  }
  if (e?.code !== 14 && !/^14 UNAVAILABLE/.test(e?.message ?? "")) return undefined;
  if (misconfigured(err)) return undefined;
  // A member named by a host name that does not resolve (a typo, or DNS away).
  const name = /Name resolution failed for target dns:(.+):\d+/.exec(e.message ?? "")?.[1];
  if (name) return `the name ${name} does not resolve`;
  return lastError(e.message ?? "")?.split("\n")[0] || "no connection";
}

/** A datastore error said as briefly as is true: what to fix, else why it did not answer, else its own message. */
export function datastoreReason(err: unknown): string {
  return misconfigured(err) ?? unreachable(err) ?? (err as Error)?.message ?? String(err);
}

export async function create(store: Datastore, key: string, value: string): Promise<number> {
  return store.txn([{ op: "create", key, value }]);
}

export async function update(store: Datastore, key: string, value: string, modRevision?: number): Promise<number> {
  return store.txn([{ op: "update", key, value, modRevision }]);
}

export const DEFAULT_DATASTORE = "sqlite:/var/lib/weft/weft.db";

/** What --datastore takes, for the CLI's help. */
export const DATASTORE_HELP = `sqlite:PATH, etcd://HOST:PORT[,HOST:PORT] or etcds://... (TLS: ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE; an etcd user: ETCD_USERNAME, ETCD_PASSWORD) (env WEFT_DATASTORE, or Calico's ETCD_ENDPOINTS; default ${DEFAULT_DATASTORE})`;

/** Calico's etcd endpoints ("https://10.0.0.1:2379,https://10.0.0.2:2379") as a datastore URL. */
export function etcdEndpointsURL(endpoints: string): string {
  const list = endpoints.split(",").map((e) => e.trim()).filter(Boolean);
  const parsed = list.map((e) => /^(https?):\/\/([^/\s]+?)\/?$/.exec(e));
  const schemes = new Set(parsed.map((m) => m?.[1]));
  if (list.length === 0 || parsed.some((m) => !m) || schemes.size !== 1) {
    throw new DatastoreURLError(`etcd endpoints "${endpoints}": expected http://HOST:PORT or https://HOST:PORT, comma-separated, all with one scheme`);
  }
  return `${schemes.has("https") ? "etcds" : "etcd"}://${parsed.map((m) => m![2]).join(",")}`;
}

/** The datastore when none is given: WEFT_DATASTORE, else Calico's ETCD_ENDPOINTS, else the SQLite default. */
export function defaultDatastore(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WEFT_DATASTORE) return env.WEFT_DATASTORE;
  if (env.ETCD_ENDPOINTS) return etcdEndpointsURL(env.ETCD_ENDPOINTS);
  return DEFAULT_DATASTORE;
}

/** Certificate files for etcds:// (Calico's ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE). */
export interface EtcdTLSFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export const ETCD_TLS_ENV = { ca: "ETCD_CA_CERT_FILE", cert: "ETCD_CERT_FILE", key: "ETCD_KEY_FILE" } as const;

export function etcdTLSFromEnv(env: NodeJS.ProcessEnv = process.env): EtcdTLSFiles {
  return { ca: env[ETCD_TLS_ENV.ca] || undefined, cert: env[ETCD_TLS_ENV.cert] || undefined, key: env[ETCD_TLS_ENV.key] || undefined };
}

/** An etcd user, for etcd with authentication on (Calico's ETCD_USERNAME and ETCD_PASSWORD). */
export interface EtcdUser {
  username?: string;
  password?: string;
}

export const ETCD_USER_ENV = { username: "ETCD_USERNAME", password: "ETCD_PASSWORD" } as const;

export function etcdUserFromEnv(env: NodeJS.ProcessEnv = process.env): EtcdUser {
  return { username: env[ETCD_USER_ENV.username] || undefined, password: env[ETCD_USER_ENV.password] || undefined };
}

/** The user, if one is given; a name without a password (or the reverse) is a mistake, said. */
function checkUser(user: EtcdUser): { username: string; password: string } | undefined {
  if (!user.username && !user.password) return undefined;
  if (!user.username || !user.password) throw new DatastoreURLError(`etcd: ${ETCD_USER_ENV.username} and ${ETCD_USER_ENV.password} go together (an etcd user and its password)`);
  return { username: user.username, password: user.password };
}

/** The contents of etcd's TLS files. */
export interface EtcdTLS {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the certificate files, naming the one that cannot be read. */
function readTLS(files: EtcdTLSFiles): EtcdTLS {
  if (!files.cert !== !files.key) throw new DatastoreURLError(`etcds: ${ETCD_TLS_ENV.cert} and ${ETCD_TLS_ENV.key} go together (a client certificate and its key)`);
  const out: EtcdTLS = {};
  for (const k of ["ca", "cert", "key"] as const) {
    const file = files[k];
    if (!file) continue;
    try {
      out[k] = readFileSync(file);
    } catch (err) {
      throw new DatastoreURLError(`etcds: ${ETCD_TLS_ENV[k]} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return out;
}

/**
 * Opens sqlite:PATH, etcd://HOST:PORT[,HOST:PORT] or etcds://... (TLS; certificates
 * from opts.tls, else the ETCD_*_FILE variables; an etcd user from opts.user, else
 * ETCD_USERNAME and ETCD_PASSWORD). A missing SQLite file is created,
 * unless create is false (commands that only read or remove: a mistyped path then
 * says so instead of showing an empty datastore and leaving a new file behind).
 */
export async function openDatastore(url: string, opts: { create?: boolean; tls?: EtcdTLSFiles; user?: EtcdUser } = {}): Promise<Datastore> {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (!path) throw new DatastoreURLError(`datastore "${url}": give a file, e.g. ${DEFAULT_DATASTORE}`);
    if (opts.create === false && !existsSync(path)) {
      throw new DatastoreURLError(`datastore "${url}": no such file ("weft apply" or "weft node run" creates it)`);
    }
    const { SqliteStore } = await import("./sqlite.js");
    return SqliteStore.open(path);
  }
  const m = /^(etcds?):\/\/(.*)$/.exec(url);
  if (m) {
    const hosts = m[2].split(",").filter(Boolean);
    if (hosts.length === 0 || hosts.some((h) => !/^[A-Za-z0-9.-]+:\d+$/.test(h))) {
      throw new DatastoreURLError(`datastore "${url}": expected ${m[1]}://HOST:PORT[,HOST:PORT]`);
    }
    const files = opts.tls ?? etcdTLSFromEnv();
    // Read now (a file that cannot be read is said at once) and again when the connection
    // fails: certificates are renewed on disk under a running node.
    const tls = m[1] === "etcds" ? { first: readTLS(files), again: () => readTLS(files), files: Object.values(files).filter((x): x is string => !!x) } : undefined;
    const user = checkUser(opts.user ?? etcdUserFromEnv());
    const { EtcdStore } = await import("./etcd.js");
    return EtcdStore.open(hosts, tls, user);
  }
  throw new DatastoreURLError(`datastore "${url}": unknown kind; use sqlite:PATH, etcd://HOST:PORT[,HOST:PORT] or etcds:// (TLS)`);
}
