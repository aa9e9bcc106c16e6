// weft node diags, as calicoctl node diags: what someone helping with a problem asks for
// first, in one tar.gz: the node's status, routes and metrics (when one answers here),
// checksystem, and the host's addresses, links, routes, rules, neighbours, sockets,
// firewall rules and the sysctls weft sets. It changes nothing but for checksystem's
// throwaway TUN, made and removed again.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { command } from "../native/command.js";
import { controlGet } from "../control/client.js";
import { checkSystem } from "./checksystem.js";
import { weftVersion } from "../version.js";

/** Each file of the archive and the command whose output it holds. */
const HOST_COMMANDS: Array<[string, string, string[]]> = [
  ["ip-addr.txt", "ip", ["-d", "addr", "show"]],
  ["ip-link.txt", "ip", ["-d", "-s", "link", "show"]],
  ["ip-route.txt", "ip", ["route", "show", "table", "all"]],
  ["ip-rule.txt", "ip", ["rule", "show"]],
  ["ip-neigh.txt", "ip", ["neigh", "show"]],
  ["bridge-fdb.txt", "bridge", ["fdb", "show"]],
  ["ss.txt", "ss", ["-tuanp"]],
  ["iptables-save.txt", "iptables-save", []],
  ["nft-ruleset.txt", "nft", ["list", "ruleset"]],
  ["sysctl.txt", "sysctl", ["net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"]],
];

/** What a control socket serves, as files. */
const NODE_FILES: Array<[string, string]> = [
  ["node-status.json", "/status"],
  ["node-bgp.json", "/bgp"],
  ["node-routes.json", "/routes"],
  ["node-metrics.txt", "/metrics"],
];

/** Writes the archive into outDir; returns its path and what went into it. */
export async function collectDiags(outDir: string, socket: string | undefined): Promise<{ file: string; files: string[]; nodeAnswered: boolean }> {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
  const name = `weft-diags-${os.hostname()}-${stamp}`;
  const work = mkdtempSync(path.join(os.tmpdir(), "weft-diags-"));
  const dir = path.join(work, name);
  const files: string[] = [];
  const put = (file: string, text: string) => {
    writeFileSync(path.join(dir, file), text.endsWith("\n") || text === "" ? text : `${text}\n`);
    files.push(file);
  };
  try {
    mkdirSync(dir);
    put("about.txt", [`weft ${weftVersion()}`, `node ${process.version}`, `${os.type()} ${os.release()} ${os.arch()}`, `host ${os.hostname()}`, `collected ${new Date().toISOString()}`].join("\n"));
    let nodeAnswered = false;
    let datastore: string | undefined;
    if (socket) {
      for (const [file, url] of NODE_FILES) {
        try {
          const body = await controlGet(socket, url, true);
          nodeAnswered = true;
          put(file, url === "/metrics" ? body : JSON.stringify(JSON.parse(body), null, 2));
          if (url === "/status") datastore = (JSON.parse(body) as { datastore?: { url?: string } }).datastore?.url;
        } catch (err) {
          put(file, `no answer from the node on ${socket}: ${(err as Error).message}`);
        }
      }
    }
    // Checked against the datastore the node uses, when one answered.
    put("checksystem.json", JSON.stringify(await checkSystem("weft0", datastore), null, 2));
    for (const [file, cmd, args] of HOST_COMMANDS) {
      const r = await command(cmd, args);
      put(file, r.missing ? `${cmd} is not installed` : `$ ${[cmd, ...args].join(" ")}\n${r.stdout}${r.ok ? "" : `\n(exit ${r.code ?? "?"}: ${r.stderr})`}`);
    }
    const file = path.join(path.resolve(outDir), `${name}.tar.gz`);
    const tar = await command("tar", ["-C", work, "-czf", file, name]);
    if (!tar.ok) throw new Error(`tar ${file}: ${tar.stderr}`);
    return { file, files, nodeAnswered };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
