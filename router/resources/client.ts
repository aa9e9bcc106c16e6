// Reading and writing resources in the datastore, with the one validator per kind.
import { randomUUID } from "node:crypto";
import { KINDS, type IPPool, type Kind, type NodeResource, type Resource } from "./kinds.js";
import { parseResource, validateIPPoolChange, ValidationError } from "./validate.js";
import { ConflictError, isJSONObject, readRecord, readRecords, unreadableRecords, type Datastore, type KV, type Op } from "../store/store.js";

export const RESOURCE_PREFIX = "/weft/resources/";

export function resourceKey(kind: Kind, name: string): string {
  return `${RESOURCE_PREFIX}${KINDS[kind].plural}/${name}`;
}

/** The shape every stored resource has (what weft writes went through the validator). */
const resourceShape = (v: Record<string, unknown>) => typeof v.kind === "string" && isJSONObject(v.metadata) && typeof v.metadata.name === "string" && isJSONObject(v.spec ?? {});
const withVersion = (r: Resource, kv: KV) => ((r.metadata.resourceVersion = String(kv.modRevision)), r);

/** A stored resource, or undefined (noted in unreadableRecords) if the record is not one. */
function decode(kv: KV): Resource | undefined {
  const r = readRecord<Resource>(kv, resourceShape);
  return r && withVersion(r, kv);
}

/** A record that is there but is not a resource (see readRecord). */
export class UnreadableRecordError extends Error {}

export class Resources {
  constructor(readonly store: Datastore) {}

  async list<T extends Resource = Resource>(kind: Kind): Promise<T[]> {
    return (await this.listAt<T>(kind)).items;
  }

  /** The resources of a kind and the datastore revision they were read at. */
  async listAt<T extends Resource = Resource>(kind: Kind): Promise<{ items: T[]; revision: number }> {
    const prefix = `${RESOURCE_PREFIX}${KINDS[kind].plural}/`;
    const { items, revision } = await this.store.list(prefix);
    return { items: readRecords<Resource>(prefix, items, resourceShape).map(({ kv, value }) => withVersion(value, kv) as T), revision };
  }

  async get<T extends Resource = Resource>(kind: Kind, name: string): Promise<T | undefined> {
    const kv = await this.store.get(resourceKey(kind, name));
    if (!kv) return undefined;
    const r = decode(kv);
    if (!r) throw new UnreadableRecordError(`datastore record ${kv.key} is not a resource weft can read (${unreadableRecords.get(kv.key)}): fix it, or delete the key`);
    return r as T;
  }

  /**
   * Validates every resource against the store and against each other, then writes
   * all of them in one transaction: one bad document means nothing changes.
   * create: refuse resources that exist; replace: refuse those that do not. A
   * resourceVersion given is a CAS token.
   */
  async apply(resources: Resource[], mode: "apply" | "create" | "replace" = "apply"): Promise<Array<{ resource: Resource; action: "created" | "configured" | "unchanged" }>> {
    // Every write goes through the kind's validator, whoever built the resource.
    resources = resources.map((r) => parseResource(r));
    const seen = new Set<string>();
    for (const r of resources) {
      const k = resourceKey(r.kind, r.metadata.name);
      if (seen.has(k)) throw new ValidationError(`${r.kind}(${r.metadata.name})`, "metadata.name", "appears twice in this apply");
      seen.add(k);
    }
    const pools = await this.list<IPPool>("IPPool");
    const incomingPools = resources.filter((r): r is IPPool => r.kind === "IPPool");
    const keptPools = pools.filter((p) => !incomingPools.some((i) => i.metadata.name === p.metadata.name));
    const nodes = incomingPools.length ? await this.list<NodeResource>("Node") : [];
    const ops: Op[] = [];
    const results: Array<{ resource: Resource; action: "created" | "configured" | "unchanged" }> = [];
    for (const r of resources) {
      const key = resourceKey(r.kind, r.metadata.name);
      const current = await this.store.get(key);
      const label = `${r.kind}(${r.metadata.name})`;
      if (current && mode === "create") throw new ValidationError(label, "metadata.name", "already exists; use apply to change it");
      if (!current && mode === "replace") throw new ValidationError(label, "metadata.name", "does not exist; use create or apply to make it");
      // A record weft cannot read is replaced by what is applied.
      const previous = current ? decode(current) : undefined;
      // Against the pools that stay and the ones earlier in this apply: the later one is blamed.
      if (r.kind === "IPPool") validateIPPoolChange(r as IPPool, [...keptPools, ...incomingPools.slice(0, incomingPools.indexOf(r as IPPool))], previous as IPPool | undefined, nodes);
      const wanted = r.metadata.resourceVersion;
      if (wanted !== undefined && current && String(current.modRevision) !== wanted) {
        throw new ConflictError(key, `${label} changed since resourceVersion ${wanted} (now ${current.modRevision}); get it again and re-apply`);
      }
      const stored: Resource = {
        ...r,
        // What identifies a resource is the datastore's to give, as calicoctl's is: a new
        // one made from another's exported YAML gets its own.
        metadata: { ...r.metadata, resourceVersion: undefined, uid: previous?.metadata.uid ?? randomUUID(), creationTimestamp: previous?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z") },
      };
      delete stored.metadata.resourceVersion;
      const value = JSON.stringify(stored);
      if (current && current.value === value) {
        results.push({ resource: stored, action: "unchanged" });
        continue;
      }
      ops.push(current ? { op: "update", key, value, modRevision: current.modRevision } : { op: "create", key, value });
      results.push({ resource: stored, action: current ? "configured" : "created" });
    }
    if (ops.length) await this.store.txn(ops);
    // A record weft could not read is now one it wrote.
    for (const o of ops) unreadableRecords.delete(o.key);
    return results;
  }

  async delete(kind: Kind, name: string): Promise<boolean> {
    const key = resourceKey(kind, name);
    const kv = await this.store.get(key);
    if (!kv) return false;
    await this.store.txn([{ op: "delete", key, modRevision: kv.modRevision }]);
    return true;
  }
}
