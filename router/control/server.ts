// The node's control socket: HTTP over a unix socket (/run/weft/<node>.sock).
import http from "node:http";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { Counter, Registry } from "prom-client";
import type { Counters } from "../dataplane/counters.js";

export const CONTROL_DIR = "/run/weft";

export function controlSocketPath(node: string): string {
  return path.join(CONTROL_DIR, `${node}.sock`);
}

export interface ControlSources {
  status(): unknown;
  routes(): unknown;
  counters(): Counters;
}

export function metricsRegistry(src: ControlSources): Registry {
  const registry = new Registry();
  new Counter({
    name: "weft_dataplane_packets_total",
    help: "Packets handled by the fast path, by event",
    labelNames: ["event"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, v] of Object.entries(src.counters())) if (!name.startsWith("drop_")) this.inc({ event: name }, v);
    },
  });
  new Counter({
    name: "weft_dataplane_drops_total",
    help: "Packets dropped by the fast path, by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, v] of Object.entries(src.counters())) if (name.startsWith("drop_")) this.inc({ reason: name.slice(5) }, v);
    },
  });
  return registry;
}

export function startControlServer(socketPath: string, src: ControlSources): Promise<http.Server> {
  const registry = metricsRegistry(src);
  const json = (res: http.ServerResponse, body: unknown) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer(async (req, res) => {
    try {
      switch (req.url) {
        case "/status":
          return json(res, src.status());
        case "/routes":
          return json(res, src.routes());
        case "/counters":
          return json(res, src.counters());
        case "/metrics":
          res.writeHead(200, { "content-type": registry.contentType });
          return res.end(await registry.metrics());
        default:
          res.writeHead(404).end("not found\n");
      }
    } catch (err) {
      res.writeHead(500).end(`${(err as Error).message}\n`);
    }
  });
  mkdirSync(path.dirname(socketPath), { recursive: true });
  rmSync(socketPath, { force: true });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve(server));
  });
}
