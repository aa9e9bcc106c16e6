// weft's version, from its package.json: what `weft --version` and `weft version` print,
// and what a running node reports (status, weft_build_info).
import { readFileSync } from "node:fs";
import path from "node:path";
import { projectRoot } from "./native/index.js";

let version: string | undefined;

export function weftVersion(): string {
  version ??= (JSON.parse(readFileSync(path.join(projectRoot(), "package.json"), "utf8")) as { version: string }).version;
  return version;
}
