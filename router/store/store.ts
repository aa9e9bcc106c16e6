// The datastore: one interface with revisions, create / compare-and-swap update /
// delete, list by prefix and watch from a revision. Values are JSON text.
import { existsSync } from "node:fs";

export interface KV {
  key: string;
  value: string;
  /** Revision of the last change to this key (compare-and-swap token). */
  modRevision: number;
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
  close(): Promise<void>;
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

/**
 * If err says the datastore did not answer (etcd's client reports that as gRPC status
 * 14 with a long text), the short reason, e.g. "connect ECONNREFUSED 10.0.0.1:2379".
 */
export function unreachable(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: string; isBrokenCircuitError?: boolean };
  // After repeated failures the client stops trying a host for a few seconds.
  if (e?.isBrokenCircuitError) return "the client is pausing after repeated failures";
  if (e?.code !== 14 && !/^14 UNAVAILABLE/.test(e?.message ?? "")) return undefined;
  return /Last error: (?:Error: )?(.*?)\.?\s*(?:Resolution note|$)/.exec(e.message ?? "")?.[1] ?? "no connection";
}

export async function create(store: Datastore, key: string, value: string): Promise<number> {
  return store.txn([{ op: "create", key, value }]);
}

export async function update(store: Datastore, key: string, value: string, modRevision?: number): Promise<number> {
  return store.txn([{ op: "update", key, value, modRevision }]);
}

export const DEFAULT_DATASTORE = "sqlite:/var/lib/weft/weft.db";

/**
 * Opens sqlite:PATH or etcd://HOST:PORT[,HOST:PORT]. A missing SQLite file is created,
 * unless create is false (commands that only read or remove: a mistyped path then
 * says so instead of showing an empty datastore and leaving a new file behind).
 */
export async function openDatastore(url: string, opts: { create?: boolean } = {}): Promise<Datastore> {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (!path) throw new DatastoreURLError(`datastore "${url}": give a file, e.g. ${DEFAULT_DATASTORE}`);
    if (opts.create === false && !existsSync(path)) {
      throw new DatastoreURLError(`datastore "${url}": no such file ("weft apply" or "weft node run" creates it)`);
    }
    const { SqliteStore } = await import("./sqlite.js");
    return SqliteStore.open(path);
  }
  if (url.startsWith("etcd://")) {
    const hosts = url.slice("etcd://".length).split(",").filter(Boolean);
    if (hosts.length === 0 || hosts.some((h) => !/^[A-Za-z0-9.-]+:\d+$/.test(h))) {
      throw new DatastoreURLError(`datastore "${url}": expected etcd://HOST:PORT[,HOST:PORT]`);
    }
    const { EtcdStore } = await import("./etcd.js");
    return EtcdStore.open(hosts);
  }
  throw new DatastoreURLError(`datastore "${url}": unknown kind; use sqlite:PATH or etcd://HOST:PORT[,HOST:PORT]`);
}
