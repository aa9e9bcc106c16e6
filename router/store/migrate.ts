// weft datastore export / import: every record under /weft/ exactly as stored (resources
// and IPAM blocks; ones weft cannot read too), to back a datastore up or move it, e.g.
// from one host's SQLite file to etcd. Import fills an empty datastore only, so nothing
// in it is overwritten; one an interrupted import of the same file left is completed.
import { WEFT_PREFIX, type Datastore } from "./store.js";

export const EXPORT_FORMAT = "weft-datastore-export/1";
/** Records per import transaction, and bytes: within etcd's defaults (128 operations, 1.5 MiB requests). */
const BATCH_RECORDS = 64;
const BATCH_BYTES = 1 << 20;

export interface DatastoreExport {
  format: typeof EXPORT_FORMAT;
  /** The datastore it came from, and its revision then. */
  from: string;
  revision: number;
  exportedAt: string;
  records: Array<{ key: string; value: string }>;
}

/** A file that is not an export weft can import: exit 2, nothing written. */
export class ExportFileError extends Error {}

/** An import that cannot go ahead, or stopped part-way (the message says how far). */
export class ImportError extends Error {}

export async function exportDatastore(store: Datastore): Promise<DatastoreExport> {
  const { items, revision } = await store.list(WEFT_PREFIX);
  return { format: EXPORT_FORMAT, from: store.description, revision, exportedAt: new Date().toISOString(), records: items.map((kv) => ({ key: kv.key, value: kv.value })) };
}

/** The export in a file's text, checked whole before anything is written. */
export function parseExport(text: string, file: string): DatastoreExport {
  const bad = (why: string) => new ExportFileError(`${file}: not a weft datastore export (${why}); make one with weft datastore export`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("not a JSON object");
  const d = doc as Partial<DatastoreExport>;
  if (d.format !== EXPORT_FORMAT) throw bad(`format is ${JSON.stringify(d.format)}, not "${EXPORT_FORMAT}"`);
  if (!Array.isArray(d.records)) throw bad("no records list");
  const seen = new Set<string>();
  d.records.forEach((r: unknown, i) => {
    const rec = r as { key?: unknown; value?: unknown } | null;
    if (typeof rec !== "object" || rec === null || typeof rec.key !== "string" || typeof rec.value !== "string") throw bad(`records[${i}] is not a key and a value, both strings`);
    if (!rec.key.startsWith(WEFT_PREFIX)) throw bad(`records[${i}]: key ${JSON.stringify(rec.key)} is not under ${WEFT_PREFIX}`);
    if (seen.has(rec.key)) throw bad(`records[${i}]: key ${rec.key} appears twice`);
    seen.add(rec.key);
  });
  return { format: EXPORT_FORMAT, from: String(d.from ?? "?"), revision: Number(d.revision ?? 0), exportedAt: String(d.exportedAt ?? "?"), records: d.records as DatastoreExport["records"] };
}

/**
 * Writes the export's records into store. The store must hold no weft record the
 * export does not hold with the same value: that is an empty datastore, or one an
 * interrupted import of this export left, which is then completed.
 */
export async function importDatastore(store: Datastore, exp: DatastoreExport): Promise<{ written: number; alreadyThere: number }> {
  const want = new Map(exp.records.map((r) => [r.key, r.value]));
  const { items } = await store.list(WEFT_PREFIX);
  const other = items.filter((kv) => want.get(kv.key) !== kv.value);
  if (other.length) {
    throw new ImportError(`${store.description} already holds ${other.length} weft record${other.length === 1 ? "" : "s"} this export does not (first: ${other[0].key}): import into an empty datastore, so nothing in it is overwritten`);
  }
  const there = new Set(items.map((kv) => kv.key));
  const todo = exp.records.filter((r) => !there.has(r.key));
  let written = 0;
  while (written < todo.length) {
    const batch: typeof todo = [];
    let bytes = 0;
    for (const r of todo.slice(written)) {
      if (batch.length === BATCH_RECORDS || (batch.length > 0 && bytes + r.key.length + r.value.length > BATCH_BYTES)) break;
      batch.push(r);
      bytes += r.key.length + r.value.length;
    }
    try {
      // Creates: a record someone else wrote meanwhile fails the batch instead of being overwritten.
      await store.txn(batch.map((r) => ({ op: "create", key: r.key, value: r.value })));
    } catch (err) {
      throw new ImportError(`${(err as Error).message}: imported ${written + there.size} of ${exp.records.length} records into ${store.description}; running the same import again completes it`);
    }
    written += batch.length;
  }
  return { written, alreadyThere: there.size };
}
