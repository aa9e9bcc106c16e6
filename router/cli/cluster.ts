// calicoctl-style commands: get, apply, create, replace, label, patch, delete, ipam, datastore.
import { readFileSync, writeFileSync } from "node:fs";
import { Command, Option } from "commander";
import { DATASTORE_HELP, defaultDatastore, misconfigured, openDatastore, unreachable, unreadableRecords, type Datastore } from "../store/store.js";
import { Resources, UnreadableRecordError } from "../resources/client.js";
import { bgpNodeConfigName, kindOf, KINDS, MAX_BLOCKS_PER_HOST, nodeIPv4, nodeTunnelAddress, type BGPPeer, type IPPool, type IPReservation, type Kind, type NodeResource, type Resource } from "../resources/kinds.js";
import { ManifestError, parseManifests, render, table } from "../resources/manifest.js";
import { configureIPAM, ipamFor, nodeOfAffinity, poolHolding, readIPAMConfig, reservedBy, TUNNEL_HANDLE_PREFIX, type Allocation, type Block, type IPAMConfig } from "../ipam/ipam.js";
import { ConfigError } from "../node/config.js";
import { calicoOnlyKind } from "../resources/validate.js";
import { wholeNumber } from "./args.js";
import { label, patch } from "./edit.js";
import { parseIPv4 } from "../dataplane/addr.js";
import { exportDatastore, importDatastore, parseExport } from "../store/migrate.js";

export function datastoreURL(opts: { datastore?: string }): string {
  return opts.datastore ?? defaultDatastore();
}

const datastoreOption = () => new Option("--datastore <url>", DATASTORE_HELP);

/** Runs fn on the datastore; only commands that write resources (create) make a new SQLite file. */
async function withStore<T>(opts: { datastore?: string }, fn: (s: Datastore) => Promise<T>, how: { create?: boolean } = {}): Promise<T> {
  const url = datastoreURL(opts);
  const store = await openDatastore(url, { create: how.create ?? false });
  let named = false; // the error already names the record
  try {
    return await fn(store);
  } catch (err) {
    const bad = misconfigured(err);
    if (bad) throw new Error(`datastore ${url}: ${bad}`);
    const why = unreachable(err);
    if (why) throw new Error(`datastore ${url} did not answer (${why}); is etcd running there?`);
    named = err instanceof UnreadableRecordError && unreadableRecords.size === 1;
    throw err;
  } finally {
    await store.close();
    if (unreadableRecords.size && !named) {
      process.stderr.write(`weft: note: skipped datastore records weft cannot read (written around weft?); fix or delete them:\n${[...unreadableRecords].map(([k, why]) => `  ${k}: ${why}\n`).join("")}`);
    }
  }
}

/** Each kind by the word the CLI takes for it first (ippool, node, ...). */
const KIND_WORDS = Object.values(KINDS).map((k) => k.aliases[0]);
const KIND_HELP = KIND_WORDS.join(" | ");

function kindArg(word: string): Kind {
  const k = kindOf(word);
  const calico = k ? undefined : calicoOnlyKind(word);
  if (calico) throw new ConfigError(`${calico.kind} is Calico's, and weft does not have it (${calico.instead}); weft knows ${KIND_WORDS.join(", ")}`);
  if (!k) throw new ConfigError(`unknown kind "${word}"; weft knows ${KIND_WORDS.join(", ")}`);
  return k;
}

/** The resources a command names: those in a manifest file (their specs unread), or a kind and names. */
function resourceTargets(verb: "get" | "delete", word: string | undefined, names: string[], filename: string | undefined): Array<{ kind: Kind; name: string }> {
  if (filename !== undefined) {
    if (word !== undefined) throw new ConfigError(`${verb} takes -f FILE or KIND and names, not both`);
    return parseManifests(readManifest(filename), filename, { idOnly: true }).map((r) => ({ kind: r.kind, name: r.metadata.name }));
  }
  // get also takes a kind alone (every one of it); its caller handles that before here.
  if (word === undefined || names.length === 0) throw new ConfigError(verb === "get" ? "get needs KIND [NAME...] or -f FILE" : "delete needs -f FILE or KIND NAME...");
  const kind = kindArg(word);
  return names.map((name) => ({ kind, name }));
}

export function readManifest(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** `weft ipam show --ip A`: whether the address is in use, and by whom, as calicoctl says it. */
export function describeAddress(ip: string, at: { block?: Block; allocation?: Allocation }, pools: IPPool[], reservations: IPReservation[] = []): string {
  const a = parseIPv4(ip)!;
  const inEntry = (c: string) => reservedBy([c])(a);
  const reservation = reservations.find((r) => r.spec.reservedCIDRs.some(inEntry));
  const reservedText = reservation ? `  reserved: IPReservation(${reservation.metadata.name}) ${reservation.spec.reservedCIDRs.find(inEntry)}${at.allocation ? " (given out before it was reserved)" : " (never given out)"}\n` : "";
  const pool = at.block ? pools.find((p) => p.metadata.name === at.block!.pool) : poolHolding(pools, a);
  const poolText = at.block && !pool ? `IPPool(${at.block.pool}), since deleted` : pool ? `IPPool(${pool.metadata.name}) ${pool.spec.cidr}` : undefined;
  const owner = at.block ? nodeOfAffinity(at.block.affinity) : undefined;
  const blockText = at.block && `${at.block.cidr}, ${owner ? `affine to ${owner}` : "affine to no node"}`;
  if (!at.allocation) {
    if (!poolText) return `IP ${ip} is not assigned, and is in no IP pool\n${reservedText}`;
    return `IP ${ip} is not assigned\n  pool: ${poolText}\n  block: ${blockText ?? "none claimed yet"}\n${reservedText}`;
  }
  const { handle, node } = at.allocation;
  const what = handle.startsWith(TUNNEL_HANDLE_PREFIX) ? ` (node ${handle.slice(TUNNEL_HANDLE_PREFIX.length)}'s tunnel address)` : "";
  const borrowed = owner && owner !== node ? ` (borrowed by ${node})` : "";
  return `IP ${ip} is in use\n  handle: ${handle}${what}\n  node: ${node}\n  block: ${blockText}${borrowed}\n  pool: ${poolText}\n${reservedText}`;
}

/** One block's row in `weft ipam show --show-blocks`. */
/** Rows as `a | b | c` lines, each column as wide as its widest cell. */
function pipeTable(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join(" | ")).join("\n")}\n`;
}

function blockRow(label: string, block: Block): string[] {
  const size = 2 ** (32 - Number(block.cidr.split("/")[1]));
  const n = Object.keys(block.allocations).length;
  return [`${label} (${block.affinity ?? "no affinity"})`, block.cidr, String(size), String(n), String(size - n)];
}

export function registerClusterCommands(program: Command): void {
  program
    .command("get")
    .description(`print resources: all of a kind, some by name, or those a file names (${KIND_WORDS.join(", ")}); one that does not exist fails the command after the rest are printed`)
    .argument("[kind]", KIND_HELP)
    .argument("[names...]", "resource names (default: every one of the kind)")
    .option("-f, --filename <file>", "print the resources this manifest file names (or - for standard input)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "wide", "yaml", "json"]).default("table"))
    .addOption(datastoreOption())
    .action(async (word: string | undefined, names: string[], opts: { filename?: string; output: string; datastore?: string }) => {
      // A kind alone lists it; names or a file ask for those resources each.
      const all = !opts.filename && word !== undefined && names.length === 0 ? kindArg(word) : undefined;
      const targets = all ? [] : resourceTargets("get", word, names, opts.filename);
      const { items, absent } = await withStore(opts, async (store) => {
        const res = new Resources(store);
        if (all) return { items: await res.list(all), absent: [] };
        const items: Resource[] = [];
        const absent: string[] = [];
        for (const t of targets) {
          const r = await res.get(t.kind, t.name);
          if (r) items.push(r);
          else absent.push(`${t.kind}(${t.name})`);
        }
        return { items, absent };
      });
      const kinds = all ? [all] : [...new Set(targets.map((t) => t.kind))];
      if (opts.output === "yaml" || opts.output === "json") {
        if (all || items.length) process.stdout.write(render(items, kinds.length === 1 ? kinds[0] : undefined, opts.output, !all && targets.length === 1));
      } else {
        // One table per kind, in the order asked; a kind listed whole has one even when empty.
        const shown = all ? kinds : kinds.filter((k) => items.some((r) => r.kind === k));
        process.stdout.write(shown.map((k) => table(items.filter((r) => r.kind === k), k, opts.output === "wide")).join("\n"));
      }
      if (absent.length) throw new Error(`resource does not exist: ${absent.join(", ")}`);
    });

  const writeModes = {
    apply: "create or update the resources in a file (validated whole: one bad document and nothing changes)",
    create: "create the resources in a file; fails if one exists",
    replace: "replace the resources in a file; fails if one does not exist (a resourceVersion given must be the stored one)",
  } as const;
  for (const mode of ["apply", "create", "replace"] as const) {
    program
      .command(mode)
      .description(writeModes[mode])
      .requiredOption("-f, --filename <file>", "manifest file, or - for standard input")
      .addOption(datastoreOption())
      .action(async (opts: { filename: string; datastore?: string }) => {
        const resources = parseManifests(readManifest(opts.filename), opts.filename);
        await withStore(opts, async (store) => {
          const results = await new Resources(store).apply(resources, mode);
          for (const r of results) process.stdout.write(`${r.resource.kind}(${r.resource.metadata.name}) ${r.action}\n`);
          // Dual-stack manifests apply unchanged, but weft's data path is IPv4 only.
          for (const r of results) {
            if (r.resource.kind === "IPPool" && (r.resource as IPPool).spec.cidr.includes(":")) {
              process.stderr.write(`weft: note: ${r.resource.kind}(${r.resource.metadata.name}) is IPv6; weft routes IPv4 only, so it is stored but no pod gets an address from it\n`);
            }
            // The CrossSubnet trap: a bare address is a /32, in no other node's subnet.
            const given = r.resource.kind === "Node" ? (r.resource as NodeResource).spec.bgp?.ipv4Address : undefined;
            if (given !== undefined && nodeIPv4(r.resource as NodeResource)?.cidr.endsWith("/32")) {
              process.stderr.write(`weft: note: Node(${r.resource.metadata.name}) has ipv4Address ${given}, a /32: no other node is in its subnet, so CrossSubnet pools encapsulate all its traffic; give the subnet's prefix (e.g. ${given.split("/")[0]}/24) if it has one\n`);
            }
          }
        }, { create: mode !== "replace" });
      });
  }

  program
    .command("label")
    .description("set or remove a label on a resource, as calicoctl label does (a Node's labels feed IP pool nodeSelectors and BGPPeer selectors)")
    .argument("<kind>", KIND_HELP)
    .argument("<name>", "the resource")
    .argument("<label>", "KEY=VALUE, or KEY with --remove")
    .option("--overwrite", "replace a value the label already has")
    .option("--remove", "remove the label")
    .addOption(datastoreOption())
    .action(async (word: string, name: string, spec: string, opts: { overwrite?: boolean; remove?: boolean; datastore?: string }) => {
      const kind = kindArg(word);
      await withStore(opts, async (store) => process.stdout.write(`${await label(new Resources(store), kind, name, spec, opts)}\n`));
    });

  program
    .command("patch")
    .description("change part of a resource, as calicoctl patch does: the result is validated as an apply is, and written only if nobody changed the resource meanwhile (retried)")
    .argument("<kind>", KIND_HELP)
    .argument("<name>", "the resource")
    .requiredOption("-p, --patch <json>", `the change, e.g. '{"spec":{"nodeToNodeMeshEnabled":false}}'`)
    .addOption(new Option("-t, --type <type>", "strategic (calicoctl's default; a JSON merge patch here) or merge (RFC 7396), or json (a JSON Patch, RFC 6902)").choices(["strategic", "merge", "json"]).default("strategic"))
    .addOption(datastoreOption())
    .action(async (word: string, name: string, opts: { patch: string; type: "strategic" | "merge" | "json"; datastore?: string }) => {
      const kind = kindArg(word);
      await withStore(opts, async (store) => process.stdout.write(`${await patch(new Resources(store), kind, name, opts.patch, opts.type)}\n`));
    });

  program
    .command("delete")
    .description("delete the resources in a file, or by kind and names; one that does not exist fails the command unless --skip-not-exists; an IPPool whose addresses pods still use is kept unless --force")
    .argument("[kind]", KIND_HELP)
    .argument("[names...]", "resource names")
    .option("-f, --filename <file>", "manifest file, or - for standard input")
    .option("-s, --skip-not-exists", "a resource that does not exist is not an error")
    .option("--force", "delete an IPPool even while pods use its addresses (they lose their routes)")
    .addOption(datastoreOption())
    .action(async (word: string | undefined, names: string[], opts: { filename?: string; skipNotExists?: boolean; force?: boolean; datastore?: string }) => {
      const targets = resourceTargets("delete", word, names, opts.filename);
      // Every target is tried; those that did not exist fail the command (as calicoctl
      // does) unless --skip-not-exists. A pool whose addresses pods still hold is kept:
      // its blocks would no longer be routed and those pods would be cut off.
      const { absent, kept } = await withStore(opts, async (store) => {
        const res = new Resources(store);
        const ipam = ipamFor(store);
        const absent: string[] = [];
        const kept: string[] = [];
        for (const t of targets) {
          if (t.kind === "IPPool" && !opts.force) {
            const used = await ipam.workloadAddresses(t.name);
            if (used.length) {
              const nodes = [...new Set(used.map((a) => a.node))].sort().join(", ");
              kept.push(`IPPool(${t.name}) still has ${used.length} pod address${used.length === 1 ? "" : "es"} in use (on ${nodes}); deleting it would cut those pods off`);
              continue;
            }
          }
          const gone = await res.delete(t.kind, t.name);
          if (gone && t.kind === "Node") {
            // As calicoctl does: the node's tunnel address, its empty blocks and its own BGPConfiguration go too.
            const r = await ipam.releaseNode(t.name);
            const ownConfig = (await res.delete("BGPConfiguration", bgpNodeConfigName(t.name))) ? `; deleted its BGPConfiguration(${bgpNodeConfigName(t.name)})` : "";
            const freed = [...r.tunnel.map((a) => `tunnel address ${a}`), ...r.freedBlocks.map((b) => `block ${b}`)];
            const kept = r.stillAllocated.length ? `; ${r.stillAllocated.length} address${r.stillAllocated.length === 1 ? "" : "es"} in its blocks ${r.stillAllocated.length === 1 ? "stays" : "stay"} allocated (weft ipam release --ip A, once those pods are gone)` : "";
            process.stdout.write(`${t.kind}(${t.name}) deleted${freed.length ? `; released its ${freed.join(", ")}` : ""}${ownConfig}${kept}\n`);
          } else if (gone) process.stdout.write(`${t.kind}(${t.name}) deleted\n`);
          else if (opts.skipNotExists) process.stdout.write(`${t.kind}(${t.name}) does not exist (skipped)\n`);
          else absent.push(`${t.kind}(${t.name})`);
        }
        // A deleted BGPFilter that BGPPeers still name: their sessions now run without it (as Calico's do).
        const goneFilters = new Set(targets.filter((t) => t.kind === "BGPFilter").map((t) => t.name));
        if (goneFilters.size) {
          for (const peer of await res.list<BGPPeer>("BGPPeer")) {
            const named = (peer.spec.filters ?? []).filter((f) => goneFilters.has(f) && !absent.includes(`BGPFilter(${f})`));
            if (named.length) process.stdout.write(`BGPPeer(${peer.metadata.name}) still names ${named.map((f) => `BGPFilter(${f})`).join(", ")}: its sessions now run without ${named.length === 1 ? "it" : "them"} (take ${named.length === 1 ? "it" : "them"} out of its filters, or apply ${named.length === 1 ? "it" : "them"} again)\n`);
          }
        }
        return { absent, kept };
      });
      const problems = [
        ...kept.map((k) => `${k}. Set spec.disabled: true, recreate the pods (they get addresses from another pool), then delete it; --force deletes it now`),
        ...(absent.length ? [`resource does not exist: ${absent.join(", ")} (--skip-not-exists: not an error)`] : []),
      ];
      if (problems.length) throw new Error(problems.join("\n"));
    });

  const datastore = program.command("datastore").description("copy a datastore whole: a backup, or a move (from one host's SQLite file to etcd)");
  datastore
    .command("export")
    .description("write every weft record of the datastore, exactly as stored (resources, IPAM blocks), to a file weft datastore import takes; it holds BGP passwords, so it is made readable by its owner only")
    .option("-f, --filename <file>", "the file to write (default: standard output)")
    .addOption(datastoreOption())
    .action(async (opts: { filename?: string; datastore?: string }) => {
      const exp = await withStore(opts, (store) => exportDatastore(store));
      const text = `${JSON.stringify(exp, null, 1)}\n`;
      if (opts.filename === undefined || opts.filename === "-") process.stdout.write(text);
      else writeFileSync(opts.filename, text, { mode: 0o600 });
      process.stderr.write(`exported ${exp.records.length} record${exp.records.length === 1 ? "" : "s"} from ${exp.from} (revision ${exp.revision})${opts.filename && opts.filename !== "-" ? ` to ${opts.filename}` : ""}\n`);
    });
  datastore
    .command("import")
    .description("write an export's records into an empty datastore (stop the nodes that use it first); one an interrupted import of the same file left is completed; a datastore holding other weft records is refused, so nothing is overwritten")
    .requiredOption("-f, --filename <file>", "the export, or - for standard input")
    .addOption(datastoreOption())
    .action(async (opts: { filename: string; datastore?: string }) => {
      const parsed = parseExport(readManifest(opts.filename), opts.filename);
      const r = await withStore(opts, (store) => importDatastore(store, parsed), { create: true });
      process.stdout.write(`imported ${r.written} record${r.written === 1 ? "" : "s"} into ${datastoreURL(opts)}${r.alreadyThere ? ` (${r.alreadyThere} were there from an earlier import of it)` : ""}; exported from ${parsed.from} at revision ${parsed.revision}, ${parsed.exportedAt}\n`);
    });

  const ipam = program.command("ipam").description("IP address management: blocks, affinities, addresses");
  ipam
    .command("show")
    .description("addresses in use per pool; --show-blocks lists every block with its owner, --show-borrowed the addresses nodes hold in other nodes' blocks")
    .option("--show-blocks", "list blocks")
    .option("--show-borrowed", "list borrowed addresses (each routed as a /32 to the node that holds it)")
    .option("--ip <address>", "who holds this address: its handle (a container ID, or a node's tunnel address), node, block and pool")
    .option("--show-configuration", "the IPAM settings weft ipam configure sets (StrictAffinity, MaxBlocksPerHost)")
    .addOption(datastoreOption())
    .action(async (opts: { showBlocks?: boolean; showBorrowed?: boolean; ip?: string; showConfiguration?: boolean; datastore?: string }) => {
      if (opts.ip !== undefined && parseIPv4(opts.ip) === undefined) throw new ConfigError(`--ip must be an IPv4 address, not "${opts.ip}"`);
      await withStore(opts, async (store) => {
        const res = new Resources(store);
        if (opts.showConfiguration) {
          const c = await readIPAMConfig(res);
          process.stdout.write(pipeTable([["PROPERTY", "VALUE"], ["StrictAffinity", String(c.strictAffinity)], ["MaxBlocksPerHost", String(c.maxBlocksPerHost)]]));
          return;
        }
        const ipam = ipamFor(store, res);
        const pools = await res.list<IPPool>("IPPool");
        if (opts.ip) {
          process.stdout.write(describeAddress(opts.ip, await ipam.lookup(opts.ip), pools, await res.list<IPReservation>("IPReservation")));
          return;
        }
        const blocks = await ipam.blocks();
        const rows: string[][] = [["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"]];
        for (const p of pools) {
          const total = 2n ** BigInt((p.spec.cidr.includes(":") ? 128 : 32) - Number(p.spec.cidr.split("/")[1]));
          const used = blocks.filter((b) => b.block.pool === p.metadata.name).reduce((n, b) => n + Object.keys(b.block.allocations).length, 0);
          rows.push(["IP Pool", p.spec.cidr, String(total), `${used} (${((used / Number(total)) * 100).toFixed(0)}%)`, `${total - BigInt(used)}`]);
          if (opts.showBlocks) {
            for (const b of blocks.filter((x) => x.block.pool === p.metadata.name)) rows.push(blockRow("Block", b.block));
          }
        }
        // Blocks left by a pool that was deleted while addresses were in use.
        const orphans = blocks.filter((b) => !pools.some((p) => p.metadata.name === b.block.pool));
        for (const b of orphans) rows.push(blockRow(`Block of deleted IPPool(${b.block.pool})`, b.block));
        process.stdout.write(pipeTable(rows));
        if (opts.showBorrowed) {
          const borrowed = await ipam.borrowed();
          const b = [["IP", "BORROWING-NODE", "BLOCK", "BLOCK OWNER", "HANDLE"], ...borrowed.map((x) => [x.address, x.node, x.block, x.owner, x.handle])];
          process.stdout.write(`\n${borrowed.length ? pipeTable(b) : "No borrowed addresses.\n"}`);
        }
      });
    });
  ipam
    .command("configure")
    .description("change the cluster's IPAM settings, as calicoctl ipam configure does (weft ipam show --show-configuration prints them)")
    .option("--strictaffinity <true|false>", "true: a node whose blocks are full gets no address from another node's block (it claims a new block or fails); false (the default): it borrows one")
    .option("--max-blocks-per-host <n>", "the most blocks a node claims; then it borrows, or with strict affinity fails (0, the default: no limit)")
    .addOption(datastoreOption())
    .action(async (opts: { strictaffinity?: string; maxBlocksPerHost?: string; datastore?: string }) => {
      const change: Partial<IPAMConfig> = {};
      if (opts.strictaffinity !== undefined) {
        const v = opts.strictaffinity.toLowerCase();
        if (v !== "true" && v !== "false") throw new ConfigError(`--strictaffinity must be true or false, not "${opts.strictaffinity}"`);
        change.strictAffinity = v === "true";
      }
      if (opts.maxBlocksPerHost !== undefined) change.maxBlocksPerHost = wholeNumber("--max-blocks-per-host", opts.maxBlocksPerHost, 0, MAX_BLOCKS_PER_HOST);
      if (Object.keys(change).length === 0) throw new ConfigError("ipam configure needs --strictaffinity true|false or --max-blocks-per-host N");
      await withStore(opts, async (store) => {
        const res = new Resources(store);
        const { after, replacedUnreadable } = await configureIPAM(res, change);
        if (replacedUnreadable) process.stderr.write("weft: note: the stored IPAMConfiguration was unreadable; the settings not given are back to their defaults\n");
        if (change.strictAffinity !== undefined) process.stdout.write(`Successfully set StrictAffinity to: ${after.strictAffinity}\n`);
        if (change.maxBlocksPerHost !== undefined) process.stdout.write(`Successfully set MaxBlocksPerHost to: ${after.maxBlocksPerHost}\n`);
        // What the settings do not undo: they govern new assignments only.
        const ipam = ipamFor(store, res);
        const borrowed = after.strictAffinity && change.strictAffinity ? (await ipam.borrowed()).length : 0;
        if (borrowed) process.stderr.write(`weft: note: ${borrowed} address${borrowed === 1 ? " is" : "es are"} already borrowed from other nodes' blocks and stay${borrowed === 1 ? "s" : ""} until released (weft ipam show --show-borrowed lists them)\n`);
        if (after.maxBlocksPerHost > 0 && change.maxBlocksPerHost !== undefined) {
          const counts = new Map<string, number>();
          for (const { block } of await ipam.blocks()) {
            const n = nodeOfAffinity(block.affinity);
            if (n) counts.set(n, (counts.get(n) ?? 0) + 1);
          }
          const over = [...counts].filter(([, c]) => c > after.maxBlocksPerHost).map(([n, c]) => `${n} (${c})`);
          if (over.length) process.stderr.write(`weft: note: ${over.length === 1 ? "this node holds" : "these nodes hold"} more blocks than that and keep${over.length === 1 ? "s" : ""} them, claiming no more: ${over.join(", ")}\n`);
        }
      }, { create: true });
    });
  ipam
    .command("check")
    .description("find what IPAM still holds for deleted nodes (addresses, tunnel addresses, empty blocks) and tunnel addresses no node uses; exit 1 if any")
    .option("--release", "release what belongs to deleted nodes (their pods went with them)")
    .addOption(datastoreOption())
    .action(async (opts: { release?: boolean; datastore?: string }) => {
      await withStore(opts, async (store) => {
        const nodes = await new Resources(store).list<NodeResource>("Node");
        const ipam = ipamFor(store);
        const blocks = await ipam.blocks();
        const addresses = blocks.reduce((n, b) => n + Object.keys(b.block.allocations).length, 0);
        const known = new Map(nodes.map((n) => [n.metadata.name, nodeTunnelAddress(n)]));
        const findings = await ipam.check(known);
        const head = `Checked ${nodes.length} node${nodes.length === 1 ? "" : "s"}, ${blocks.length} block${blocks.length === 1 ? "" : "s"}, ${addresses} address${addresses === 1 ? "" : "es"}`;
        if (findings.length === 0) {
          process.stdout.write(`${head}: nothing leaked.\n`);
          return;
        }
        process.stdout.write(`${head}:\n${pipeTable([["FINDING", "ADDRESS", "NODE", "BLOCK", "HANDLE"], ...findings.map((f) => [f.what, f.address ?? "-", f.node, f.block, f.handle ?? "-"])])}`);
        const releasable = findings.filter((f) => f.releasable);
        let left = findings.length;
        if (opts.release) {
          const done = await ipam.releaseFindings(releasable, known);
          left = (await ipam.check(known)).length;
          process.stdout.write(`released: ${done.join(", ") || "(none)"}\n`);
        } else if (releasable.length) {
          process.stdout.write(`${releasable.length === 1 ? "1 of them belongs" : `${releasable.length} of them belong`} to deleted nodes: "weft ipam check --release" releases ${releasable.length === 1 ? "it" : "them"}.\n`);
        }
        const unused = findings.filter((f) => f.what === "tunnel address its node does not use");
        if (unused.length) process.stdout.write(`A running node sets its tunnel address right after claiming it; if one stays unused, "weft ipam release --ip A --force" releases it.\n`);
        if (left > 0) process.exitCode = 1;
      });
    });
  ipam
    .command("release")
    .description("release one address (or every address of a handle)")
    .option("--ip <address>", "the address")
    .option("--handle <id>", "a handle, e.g. a container ID")
    .option("--force", "release a node's tunnel address too")
    .addOption(datastoreOption())
    .action(async (opts: { ip?: string; handle?: string; force?: boolean; datastore?: string }) => {
      if (!opts.ip && !opts.handle) throw new ConfigError("ipam release needs --ip ADDRESS or --handle ID");
      if (opts.ip !== undefined && parseIPv4(opts.ip) === undefined) throw new ConfigError(`--ip must be an IPv4 address, not "${opts.ip}"`);
      await withStore(opts, async (store) => {
        const ipam = ipamFor(store);
        if (opts.ip) {
          // A node's tunnel address is the node's while it exists: released with the node.
          const held = await ipam.allocationOf(opts.ip);
          if (held?.handle.startsWith(TUNNEL_HANDLE_PREFIX) && !opts.force) {
            throw new Error(`${opts.ip} is node ${held.node}'s tunnel address; "weft delete node ${held.node}" releases it with the node (--force releases it now, and the node keeps using it)`);
          }
          process.stdout.write(`${(await ipam.releaseAddress(opts.ip)) ? "released" : "was not assigned"}: ${opts.ip}\n`);
        }
        if (opts.handle) process.stdout.write(`released: ${(await ipam.releaseByHandle(opts.handle)).join(", ") || "(none)"}\n`);
      });
    });
  ipam
    .command("assign")
    .description("assign addresses for a node by hand (debugging and load tests; the CNI plugin does this for pods)")
    .requiredOption("--node <name>", "the node")
    .requiredOption("--handle <id>", "handle prefix; with --count, -N is appended")
    .option("--count <n>", "how many, assigned concurrently", "1")
    .option("--pool <name>", "only from this IP pool (as weft-cni's ipam.ipv4_pools)")
    .addOption(datastoreOption())
    .action(async (opts: { node: string; handle: string; count: string; pool?: string; datastore?: string }) => {
      const n = wholeNumber("--count", opts.count, 1, 10_000);
      await withStore(opts, async (store) => {
        const ipam = ipamFor(store);
        // Every assignment is reported, including those made when others failed (a pool
        // that runs out part-way still hands out what it had).
        const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => ipam.assign({ node: opts.node, handle: n > 1 ? `${opts.handle}-${i}` : opts.handle, pools: opts.pool ? [opts.pool] : undefined })));
        const got = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        process.stdout.write(`${JSON.stringify(got)}\n`);
        const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
        if (failed.length) throw new Error(`assigned ${got.length} of ${n}: ${failed[0].message}`);
        if (got.length && !(await new Resources(store).get("Node", opts.node))) {
          process.stderr.write(`weft: note: no Node(${opts.node}) is registered: its blocks are routed nowhere until one is ("weft ipam check" lists them)\n`);
        }
      });
    });
}

export { ManifestError };
