// One host command (ip, nft, iptables, nsenter), optionally fed input on stdin: its
// result, never an exception, whether it failed, was killed or is not installed.
import { execFile } from "node:child_process";

export interface CommandResult {
  ok: boolean;
  /** The exit status; undefined when it never ran or was killed by a signal. */
  code?: number;
  stdout: string;
  /** Its stderr (trimmed), or why it could not run. */
  stderr: string;
  /** The command is not installed. */
  missing: boolean;
}

export function command(cmd: string, args: string[], input?: string, maxBuffer = 16 << 20): Promise<CommandResult> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { maxBuffer }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ ok: !err, code: err ? (typeof code === "number" ? code : undefined) : 0, stdout, stderr: stderr.trim() || (err?.message ?? ""), missing: code === "ENOENT" });
    });
    // A command that exits without reading its input (or never started) closes the pipe:
    // that shows in its result, not as an error event that would end the process.
    p.stdin?.on("error", () => {});
    p.stdin?.end(input);
  });
}
