// calicoctl's label and patch: read a resource, change its labels or apply a patch to it,
// and write it back through the one validator as a compare-and-swap on the version read
// (retried when someone else wrote in between), so nothing another writer did is lost.
import fastJsonPatch from "fast-json-patch";
import * as mergePatch from "json-merge-patch";
import { ConfigError } from "../node/config.js";
import type { Resources } from "../resources/client.js";
import type { Kind, Resource } from "../resources/kinds.js";
import { ConflictError } from "../store/store.js";

const RETRIES = 5;

/** Reads, changes and writes back one resource; change returns the new one or throws. */
async function edit(res: Resources, kind: Kind, name: string, change: (r: Resource) => Resource): Promise<Resource> {
  for (let attempt = 1; ; attempt++) {
    const current = await res.get(kind, name);
    if (!current) throw new Error(`${kind}(${name}) not found`);
    const next = change(structuredClone(current));
    if (next.kind !== kind || next.metadata?.name !== name) throw new ConfigError(`${kind}(${name}): a patch may not change apiVersion, kind or metadata.name`);
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    try {
      await res.apply([next]);
      return next;
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt === RETRIES) throw err;
    }
  }
}

/** `label KIND NAME key=value [--overwrite]` or `label KIND NAME key --remove`, as calicoctl's. */
export async function label(res: Resources, kind: Kind, name: string, spec: string, opts: { overwrite?: boolean; remove?: boolean }): Promise<string> {
  const eq = spec.indexOf("=");
  if (opts.remove ? eq >= 0 : eq <= 0) {
    throw new ConfigError(opts.remove ? `--remove takes a label key alone, not "${spec}"` : `expected KEY=VALUE (or KEY --remove), not "${spec}"`);
  }
  const key = opts.remove ? spec : spec.slice(0, eq);
  const value = opts.remove ? undefined : spec.slice(eq + 1);
  await edit(res, kind, name, (r) => {
    const labels = { ...r.metadata.labels };
    if (value === undefined) {
      if (!Object.hasOwn(labels, key)) throw new Error(`${kind}(${name}) has no label ${key}`);
      delete labels[key];
    } else {
      if (Object.hasOwn(labels, key) && labels[key] !== value && !opts.overwrite) throw new Error(`${kind}(${name}) already has ${key}=${labels[key]}; --overwrite replaces it`);
      labels[key] = value;
    }
    r.metadata.labels = labels;
    if (Object.keys(labels).length === 0) delete r.metadata.labels;
    return r;
  });
  return value === undefined ? `${kind}(${name}): label ${key} removed` : `${kind}(${name}): label ${key}=${value} set`;
}

/**
 * `patch KIND NAME -p PATCH [--type merge|strategic|json]`. strategic (calicoctl's
 * default) is a JSON merge patch (RFC 7396) here: no list in these kinds merges by key.
 */
export async function patch(res: Resources, kind: Kind, name: string, text: string, type: "merge" | "strategic" | "json"): Promise<string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--patch is not JSON: ${(err as Error).message}`);
  }
  if (type === "json" ? !Array.isArray(doc) : typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new ConfigError(type === "json" ? "--type json takes a JSON Patch: a list of operations such as [{\"op\":\"replace\",\"path\":\"/spec/asNumber\",\"value\":64600}]" : `--type ${type} takes a JSON object such as {"spec":{"nodeToNodeMeshEnabled":false}}`);
  }
  await edit(res, kind, name, (r) => {
    const { resourceVersion: _ignored, ...metadata } = r.metadata;
    const target = { ...r, metadata };
    if (type !== "json") return mergePatch.apply(target, doc) as Resource;
    const problem = fastJsonPatch.validate(doc as fastJsonPatch.Operation[], target);
    if (problem) throw new ConfigError(`--patch: operation ${problem.index === undefined ? "" : `${problem.index + 1} `}(${problem.name}): ${problem.message.split("\n")[0]}`);
    return fastJsonPatch.applyPatch(target, doc as fastJsonPatch.Operation[], false, false).newDocument as Resource;
  });
  return `${kind}(${name}) patched`;
}
