// Talks to a node's control socket.
import http from "node:http";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { CONTROL_DIR, controlSocketPath } from "./server.js";

/** The socket of --node N, or the only node running here. */
export function resolveSocket(opts: { node?: string; control?: string }): string {
  if (opts.control) return opts.control;
  if (opts.node) return controlSocketPath(opts.node);
  const socks = existsSync(CONTROL_DIR) ? readdirSync(CONTROL_DIR).filter((f) => f.endsWith(".sock")) : [];
  if (socks.length === 1) return path.join(CONTROL_DIR, socks[0]);
  if (socks.length === 0) throw new Error(`no weft node is running here (no socket in ${CONTROL_DIR}); start one with "weft node run", or give the socket of one started with --control (--control PATH)`);
  throw new Error(`several weft nodes run here (${socks.map((s) => s.replace(/\.sock$/, "")).join(", ")}); pick one with --node NAME`);
}

/** GET on the control socket; anyStatus: return the body whatever the HTTP status. */
export function controlGet(socketPath: string, url: string, anyStatus = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: url, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => (res.statusCode === 200 || anyStatus ? resolve(body) : reject(new Error(`${url}: ${res.statusCode} ${body.trim()}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`control socket ${socketPath} did not answer within 5 s`)));
    req.on("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "ENOENT" || err.code === "ECONNREFUSED" ? new Error(`no weft node answers on ${socketPath}; is it running?`) : err),
    );
  });
}
