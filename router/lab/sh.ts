// Commands the lab runs on the machine (namespaces, links, processes).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export async function sh(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    if (opts.allowFail) return "";
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${(e.stderr || e.message).trim()}`);
  }
}

/** Runs a command inside a network namespace. */
export function nsExec(ns: string, args: string[], opts?: { allowFail?: boolean; timeoutMs?: number }): Promise<string> {
  return sh("ip", ["netns", "exec", ns, ...args], opts);
}

/** Sets a sysctl in a namespace (allowFail: for keys that exist only with some module loaded). */
export function sysctl(ns: string, key: string, value: string | number, opts?: { allowFail?: boolean }): Promise<string> {
  return nsExec(ns, ["sysctl", "-qw", `${key}=${value}`], opts);
}
