// Making the directories a user-given path needs (a datastore file, a control socket,
// a CNI log file). Directory by directory: node's own recursive mkdir never returns
// where procfs answers ENOENT (e.g. sqlite:/proc/x/weft.db), so it is not used for
// paths that come from users.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";

export function makeDirs(dir: string): void {
  const abs = path.resolve(dir);
  if (existsSync(abs)) return;
  makeDirs(path.dirname(abs));
  mkdirSync(abs);
}
