// Metrics and health over TCP, for Prometheus and for probes that speak HTTP. weft's own
// commands read the same from the control socket; these listeners are off unless asked
// for, with --metrics-address / --health-address or Calico's Felix variables. Both are
// bound before the node touches the host, so a taken port stops it with nothing changed.
import http from "node:http";
import net from "node:net";
import type { Registry } from "prom-client";
import { ConfigError } from "../node/config.js";
import { calicoBool, wholeNumberIn } from "../node/env.js";
import { readiness, type ControlSources } from "./server.js";

export interface ListenAddress {
  host: string;
  port: number;
  /** Where it was set, for messages: the option or the variables. */
  from: string;
}

export interface HttpEndpoints {
  /** GET /metrics: Prometheus text. */
  metrics?: ListenAddress;
  /** GET /liveness and /readiness (Felix's paths): 200, or 503 with the reason. */
  health?: ListenAddress;
}

/** Calico's variables and what they set (for `weft node run --help`). */
export const HTTP_VARIABLES: Array<[string, string]> = [
  ["FELIX_PROMETHEUSMETRICSENABLED", "true: serve /metrics over HTTP, as --metrics-address does (default false)"],
  ["FELIX_PROMETHEUSMETRICSHOST", "the address it listens on (default: all of the host's)"],
  ["FELIX_PROMETHEUSMETRICSPORT", "its port (default 9091)"],
  ["FELIX_HEALTHENABLED", "true: serve /liveness and /readiness over HTTP, as --health-address does (default false)"],
  ["FELIX_HEALTHHOST", "the address it listens on (default localhost)"],
  ["FELIX_HEALTHPORT", "its port (default 9099)"],
];

const ADDRESS_HELP = "[HOST:]PORT, HOST an IPv4 address of this host or localhost (no HOST: all of them)";

function host(from: string, text: string): string {
  if (text === "" || text === "0.0.0.0") return "0.0.0.0";
  if (text === "localhost") return "127.0.0.1";
  if (!net.isIPv4(text)) throw new ConfigError(`${from}: "${text}" is not an IPv4 address or localhost`);
  return text;
}

function port(from: string, text: string): number {
  const n = wholeNumberIn(text, 1, 65535);
  if (n === undefined) throw new ConfigError(`${from}: the port must be a whole number from 1 to 65535, not "${text}"`);
  return n;
}

/** "[HOST:]PORT" as the options take it; a ConfigError names the option. */
export function parseListenAddress(from: string, text: string): ListenAddress {
  const colon = text.lastIndexOf(":");
  if (colon < 0 && !/^\d+$/.test(text.trim())) throw new ConfigError(`${from} must be ${ADDRESS_HELP}, not "${text}"`);
  return { host: host(from, colon < 0 ? "" : text.slice(0, colon)), port: port(from, text.slice(colon + 1)), from };
}

/** The listeners asked for: each option, else Calico's variables for it. */
export function httpEndpoints(opts: { metricsAddress?: string; healthAddress?: string }, env: NodeJS.ProcessEnv): HttpEndpoints {
  const fromEnv = (enabled: string, hostVar: string, portVar: string, dfltHost: string, dfltPort: string): ListenAddress | undefined => {
    if (!calicoBool(enabled, env[enabled], false)) return undefined;
    const from = `${enabled}=true with ${hostVar} and ${portVar}`;
    return { host: host(hostVar, env[hostVar] || dfltHost), port: port(portVar, env[portVar] || dfltPort), from };
  };
  return {
    metrics: opts.metricsAddress !== undefined ? parseListenAddress("--metrics-address", opts.metricsAddress) : fromEnv("FELIX_PROMETHEUSMETRICSENABLED", "FELIX_PROMETHEUSMETRICSHOST", "FELIX_PROMETHEUSMETRICSPORT", "", "9091"),
    health: opts.healthAddress !== undefined ? parseListenAddress("--health-address", opts.healthAddress) : fromEnv("FELIX_HEALTHENABLED", "FELIX_HEALTHHOST", "FELIX_HEALTHPORT", "localhost", "9099"),
  };
}

const key = (a: ListenAddress) => `${a.host}:${a.port}`;

/** What a listen error means to the user. */
function listenProblem(a: ListenAddress, err: NodeJS.ErrnoException): string {
  const why =
    err.code === "EADDRINUSE"
      ? "another process listens on that port"
      : err.code === "EADDRNOTAVAIL"
        ? "no interface of this host has that address"
        : err.code === "EACCES"
          ? "a port below 1024 needs root"
          : err.message;
  return `${a.from}: cannot listen on ${key(a)}: ${why} (${err.code ?? "error"})`;
}

/** The TCP listeners: bound by open(), answering "starting" until serve() gives them the node. */
export class HttpListeners {
  private src?: ControlSources;
  private registry?: Registry;
  private readonly servers: http.Server[] = [];
  /** The URLs served, for the node's log (with the ports bound). */
  readonly urls: string[] = [];

  /** Binds every listener asked for (one server when both share an address); a ConfigError if one cannot. */
  static async open(endpoints: HttpEndpoints): Promise<HttpListeners> {
    const wanted = new Map<string, { metrics: boolean; health: boolean; address: ListenAddress }>();
    for (const [what, a] of [["metrics", endpoints.metrics], ["health", endpoints.health]] as const) {
      if (!a) continue;
      const entry = wanted.get(key(a)) ?? { metrics: false, health: false, address: a };
      entry[what] = true;
      wanted.set(key(a), entry);
    }
    const { metrics: m, health: h } = endpoints;
    if (m && h && m.port === h.port && m.host !== h.host && (m.host === "0.0.0.0" || h.host === "0.0.0.0")) {
      throw new ConfigError(`${m.from} and ${h.from}: both use port ${m.port}, on ${m.host} and ${h.host}; give them the same address (one listener serves both) or different ports`);
    }
    const listeners = new HttpListeners();
    try {
      for (const [, entry] of wanted) {
        const server = http.createServer((req, res) => void listeners.answer(entry, req, res));
        await new Promise<void>((resolve, reject) => {
          server.once("error", (err: NodeJS.ErrnoException) => reject(new ConfigError(listenProblem(entry.address, err))));
          server.listen(entry.address.port, entry.address.host, () => resolve());
        });
        listeners.servers.push(server);
        const at = `${entry.address.host}:${(server.address() as net.AddressInfo).port}`;
        if (entry.metrics) listeners.urls.push(`http://${at}/metrics`);
        if (entry.health) listeners.urls.push(`http://${at}/liveness`, `http://${at}/readiness`);
      }
    } catch (err) {
      listeners.close();
      throw err;
    }
    return listeners;
  }

  /** From now on the node's own figures answer. */
  serve(src: ControlSources, registry: Registry): void {
    this.src = src;
    this.registry = registry;
  }

  close(): void {
    for (const s of this.servers) s.close();
  }

  private async answer(at: { metrics: boolean; health: boolean }, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    try {
      if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "only GET\n");
      const url = (req.url ?? "").split("?")[0];
      if (at.metrics && url === "/metrics") {
        if (!this.registry) return send(503, "text/plain", "the node is starting\n");
        return send(200, this.registry.contentType, await this.registry.metrics());
      }
      if (at.health && url === "/liveness") return send(200, "application/json", JSON.stringify({ live: true }));
      if (at.health && url === "/readiness") {
        const r = this.src ? readiness(this.src) : { ready: false, reason: "the node is starting" };
        return send(r.ready ? 200 : 503, "application/json", JSON.stringify(r));
      }
      const here = [...(at.metrics ? ["/metrics"] : []), ...(at.health ? ["/liveness", "/readiness"] : [])];
      return send(404, "text/plain", `not found: this address serves ${here.join(", ")}\n`);
    } catch (err) {
      return send(500, "text/plain", `${(err as Error).message}\n`);
    }
  }
}
