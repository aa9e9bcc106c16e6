// The built weft command, run as a user runs it, for the CLI tests (npm test builds first).
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import path from "node:path";
import { projectRoot } from "../native/index.js";
import { tempDir } from "../temp-dir.test-helper.js";

export const CLI = path.join(projectRoot(), "dist", "router", "cli", "main.js");

/** Runs `weft ARGS`; its output is returned, not printed. */
export function runWeft(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 20_000 });
}

/**
 * A temporary directory with a SQLite datastore file in it, and `weft` run against that
 * datastore; each run is printed under [tag] (unless quiet), so a failure shows what the
 * command said. useDatastore switches to another file in the directory.
 */
export function weftWithDatastore(tag: string, opts: { quiet?: boolean } = {}) {
  const dir = tempDir(tag);
  let ds = ["--datastore", `sqlite:${dir}/w.db`];
  const weft = (args: string[]) => {
    const r = runWeft([...args, ...ds]);
    if (!opts.quiet) console.log(`[${tag}] weft ${args.join(" ")} (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    return r;
  };
  return { dir, weft, useDatastore: (file: string) => void (ds = ["--datastore", `sqlite:${dir}/${file}`]) };
}
