// The embedded datastore: one SQLite file (WAL), safe for several node processes on
// one machine. Every change bumps a global revision and is logged, so watchers poll
// the log from their revision (there is no cross-process notification in SQLite).
import { closeSync, openSync, statfsSync } from "node:fs";
import { makeDirs } from "../native/dirs.js";
import path from "node:path";
import Database from "better-sqlite3";
import { ConflictError, NotFoundError, type Datastore, type KV, type Op, type Watch, type WatchEvent } from "./store.js";

/**
 * SQLite says "disk I/O error" when it cannot size its -shm file on a full file system
 * (it opens in WAL mode, even to read): name the cause when the directory has no space.
 */
export function noSpaceHint(dir: string, statfs: (d: string) => { bavail: number; bsize: number } = statfsSync): string {
  try {
    const { bavail } = statfs(dir);
    return bavail === 0 ? ` (the file system holding ${dir} is full: free some space there, see "df ${dir}")` : "";
  } catch {
    return "";
  }
}

const POLL_MS = 100;
const KEEP_EVENTS = 100_000;

export class SqliteStore implements Datastore {
  private constructor(
    private readonly db: Database.Database,
    readonly description: string,
  ) {}

  static open(file: string): SqliteStore {
    let db: Database.Database;
    try {
      makeDirs(path.dirname(path.resolve(file)));
      // BGP passwords live here: a new datastore is for root's eyes only (SQLite gives
      // its -wal and -shm files the same mode).
      closeSync(openSync(file, "a", 0o600));
      db = new Database(file, { timeout: 10_000 });
      db.pragma("journal_mode = WAL");
    } catch (err) {
      // No directory for it, not a database, a directory, no permission: say which file.
      throw Object.assign(new Error(`datastore sqlite:${file}: ${(err as Error).message}${noSpaceHint(path.dirname(path.resolve(file)))}`), { code: (err as { code?: unknown }).code });
    }
    db.pragma("synchronous = NORMAL");
    db.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, mod_rev INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS events (rev INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT);
      CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), rev INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta (id, rev) VALUES (1, 0);
    `);
    return new SqliteStore(db, `sqlite:${file}`);
  }

  private revision(): number {
    return (this.db.prepare("SELECT rev FROM meta WHERE id = 1").get() as { rev: number }).rev;
  }

  async get(key: string): Promise<KV | undefined> {
    const row = this.db.prepare("SELECT key, value, mod_rev FROM kv WHERE key = ?").get(key) as { key: string; value: string; mod_rev: number } | undefined;
    return row && { key: row.key, value: row.value, modRevision: row.mod_rev };
  }

  async list(prefix: string): Promise<{ items: KV[]; revision: number }> {
    const read = this.db.transaction(() => {
      const rows = this.db.prepare("SELECT key, value, mod_rev FROM kv WHERE key >= ? AND key < ? ORDER BY key").all(prefix, `${prefix}\uffff`) as Array<{ key: string; value: string; mod_rev: number }>;
      return { items: rows.map((r) => ({ key: r.key, value: r.value, modRevision: r.mod_rev })), revision: this.revision() };
    });
    return read();
  }

  async txn(ops: Op[]): Promise<number> {
    const run = this.db.transaction(() => {
      const rev = this.revision() + 1;
      const getRev = this.db.prepare("SELECT mod_rev FROM kv WHERE key = ?");
      for (const o of ops) {
        const cur = getRev.get(o.key) as { mod_rev: number } | undefined;
        if (o.op === "create" && cur) throw new ConflictError(o.key, `${o.key} already exists`);
        if (o.op !== "create" && o.modRevision !== undefined) {
          if (!cur) throw new NotFoundError(o.key);
          if (cur.mod_rev !== o.modRevision) throw new ConflictError(o.key);
        }
        if (o.op === "delete" && !cur) throw new NotFoundError(o.key);
      }
      const put = this.db.prepare("INSERT INTO kv (key, value, mod_rev) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev");
      const del = this.db.prepare("DELETE FROM kv WHERE key = ?");
      const log = this.db.prepare("INSERT INTO events (rev, key, value) VALUES (?, ?, ?)");
      // One revision per op, so a watcher sees each change; the txn is still atomic.
      let r = rev;
      for (const o of ops) {
        if (o.op === "delete") {
          del.run(o.key);
          log.run(r, o.key, null);
        } else {
          put.run(o.key, o.value, r);
          log.run(r, o.key, o.value);
        }
        r++;
      }
      this.db.prepare("UPDATE meta SET rev = ? WHERE id = 1").run(r - 1);
      if ((r - 1) % 1000 === 0) this.db.prepare("DELETE FROM events WHERE rev <= ?").run(r - 1 - KEEP_EVENTS);
      return r - 1;
    });
    // IMMEDIATE: take the write lock up front, so concurrent processes queue instead of failing.
    return run.immediate();
  }

  watch(prefix: string, afterRevision: number, onEvents: (events: WatchEvent[]) => void, onError: (err: Error) => void): Watch {
    let last = afterRevision;
    const stmt = this.db.prepare("SELECT rev, key, value FROM events WHERE rev > ? ORDER BY rev LIMIT 10000");
    const timer = setInterval(() => {
      try {
        const rows = stmt.all(last) as Array<{ rev: number; key: string; value: string | null }>;
        if (rows.length === 0) return;
        if (rows[0].rev !== last + 1 && last !== 0) {
          // The log was compacted past us: the caller must resync.
          const oldest = rows[0].rev;
          last = rows[rows.length - 1].rev;
          onError(new Error(`watch fell behind the event log (wanted ${last + 1}, oldest ${oldest})`));
          return;
        }
        last = rows[rows.length - 1].rev;
        const events = rows.filter((r) => r.key.startsWith(prefix)).map((r): WatchEvent => ({ type: r.value === null ? "delete" : "put", key: r.key, value: r.value ?? undefined, revision: r.rev }));
        if (events.length) onEvents(events);
      } catch (err) {
        onError(err as Error);
      }
    }, POLL_MS);
    timer.unref?.();
    return { stop: () => clearInterval(timer) };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
