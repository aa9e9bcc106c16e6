// A temporary directory for a test file (or a describe block), removed when its tests
// end: a run left ~300 MB in /tmp before (etcd data directories among them), every run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

/** /tmp/weft-TAG-XXXXXX, removed after the enclosing file's or block's tests (after hooks registered later, which stop what uses it). */
export function tempDir(tag: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `weft-${tag}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
