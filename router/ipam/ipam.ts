// Block-affinity IPAM as Calico does it: a node claims whole blocks from the pools
// that select it (a compare-and-swap create, retried on conflict, so a block never
// has two owners), assigns addresses from its blocks with a handle, borrows single
// addresses from other blocks when its own are full, and releases by handle or address.
import { createHash } from "node:crypto";
import { contains, formatIPv4, maskOf, parseCIDR, parseIPv4, within, type Prefix } from "../dataplane/addr.js";
import { ConflictError, readRecords, type Datastore, type KV } from "../store/store.js";
import { API_VERSION, IPAM_CONFIGURATION_NAME, reservationCIDR, type IPAMConfiguration, type IPPool, type IPReservation } from "../resources/kinds.js";
import { Resources, UnreadableRecordError } from "../resources/client.js";
import { parseResource } from "../resources/validate.js";
import { selectorOrError, SelectorError, type Labels } from "../resources/selector.js";

export const BLOCK_PREFIX = "/weft/ipam/blocks/";
/** A node's own tunnel address is held under this handle + the node name. */
export const TUNNEL_HANDLE_PREFIX = "tunnel-addr-";
const MAX_RETRIES = 100;

export interface Allocation {
  handle: string;
  /** The node the address was assigned for (differs from the affinity when borrowed). */
  node: string;
}

export interface Block {
  cidr: string;
  pool: string;
  /** "host:<node>" as Calico writes it; null once released. */
  affinity: string | null;
  allocations: Record<string, Allocation>; // ordinal -> allocation
}

export class IPAMError extends Error {}

/** The IPAM settings as assignment reads them (an IPAMConfiguration's, defaults filled). */
export interface IPAMConfig {
  strictAffinity: boolean;
  maxBlocksPerHost: number;
}

export const DEFAULT_IPAM_CONFIG: IPAMConfig = { strictAffinity: false, maxBlocksPerHost: 0 };

/**
 * The cluster's IPAMConfiguration as settings (the defaults when there is none). A stored
 * one the validator refuses (written around weft) is an error, not the defaults: a
 * node must not borrow because its strictAffinity could not be read.
 */
export async function readIPAMConfig(res: Resources): Promise<IPAMConfig> {
  return settingsOf(await res.get<IPAMConfiguration>("IPAMConfiguration", IPAM_CONFIGURATION_NAME));
}

/** The settings a stored IPAMConfiguration (or none) stands for, through its validator. */
function settingsOf(stored: IPAMConfiguration | undefined): IPAMConfig {
  if (!stored) return { ...DEFAULT_IPAM_CONFIG };
  let spec: IPAMConfiguration["spec"];
  try {
    spec = (parseResource(stored) as IPAMConfiguration).spec;
  } catch (err) {
    throw new IPAMError(`IPAMConfiguration(${IPAM_CONFIGURATION_NAME}) in the datastore does not validate (${(err as Error).message}): set it again with weft ipam configure or weft apply`);
  }
  return { strictAffinity: spec.strictAffinity ?? false, maxBlocksPerHost: spec.maxBlocksPerHost ?? 0 };
}

/** Changes some IPAM settings in the IPAMConfiguration (compare-and-swap on its resourceVersion, retried); one weft cannot read is replaced, from the defaults. */
export async function configureIPAM(res: Resources, change: Partial<IPAMConfig>): Promise<{ before: IPAMConfig; after: IPAMConfig; replacedUnreadable: boolean }> {
  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    let current: IPAMConfiguration | undefined;
    let before: IPAMConfig;
    let replacedUnreadable = false;
    try {
      current = await res.get<IPAMConfiguration>("IPAMConfiguration", IPAM_CONFIGURATION_NAME);
      before = settingsOf(current);
    } catch (err) {
      if (!(err instanceof IPAMError || err instanceof UnreadableRecordError)) throw err;
      before = { ...DEFAULT_IPAM_CONFIG };
      replacedUnreadable = true;
    }
    const after = { ...before, ...change };
    const metadata = { ...(current?.metadata ?? {}), name: IPAM_CONFIGURATION_NAME };
    try {
      await res.apply([{ apiVersion: API_VERSION, kind: "IPAMConfiguration", metadata, spec: after }]);
      return { before, after, replacedUnreadable };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  throw new IPAMError(`gave up changing the IPAM settings after ${MAX_RETRIES} conflicting attempts; try again`);
}

export const blockKey = (cidr: string) => `${BLOCK_PREFIX}${cidr.replace("/", "-")}`;
export const affinityOf = (node: string) => `host:${node}`;
export const nodeOfAffinity = (a: string | null) => (a?.startsWith("host:") ? a.slice(5) : undefined);

function blockSizeOf(b: Block): number {
  return 2 ** (32 - Number(b.cidr.split("/")[1]));
}

function addressAt(b: Block, ordinal: number): string {
  return formatIPv4(parseIPv4(b.cidr.split("/")[0])! + ordinal);
}

/** The first ordinal neither allocated nor reserved (an IPReservation), if any. */
function freeOrdinal(b: Block, reserved: (address: number) => boolean = () => false): number | undefined {
  const n = blockSizeOf(b);
  const base = parseIPv4(b.cidr.split("/")[0])!;
  for (let i = 0; i < n; i++) if (!(String(i) in b.allocations) && !reserved(base + i)) return i;
  return undefined;
}

interface StoredBlock {
  block: Block;
  kv: KV;
}

export interface AssignRequest {
  node: string;
  handle: string;
  /** The node's labels, for pool nodeSelectors. */
  labels?: Labels;
  /** What the address is for; only pools whose allowedUses include it are used (default Workload). */
  use?: "Workload" | "Tunnel";
  /** Only these pools (by name), as a CNI configuration's ipam.ipv4_pools asks. */
  pools?: string[];
}

/** One thing `weft ipam check` reports. */
export interface IPAMFinding {
  what: "address of a deleted node" | "tunnel address of a deleted node" | "empty block affine to a deleted node" | "tunnel address its node does not use";
  address?: string;
  node: string;
  block: string;
  handle?: string;
  /** check --release releases it. */
  releasable: boolean;
}

export class IPAM {
  constructor(
    private readonly store: Datastore,
    private readonly pools: () => Promise<IPPool[]>,
    /** IPReservations' reserved addresses and CIDRs: never given out (those given before stay). */
    private readonly reservations: () => Promise<string[]> = async () => [],
    /** The IPAMConfiguration's settings, read at each assignment. */
    private readonly settings: () => Promise<IPAMConfig> = async () => DEFAULT_IPAM_CONFIG,
  ) {}

  async blocks(): Promise<StoredBlock[]> {
    const { items } = await this.store.list(BLOCK_PREFIX);
    return readRecords<Block>(BLOCK_PREFIX, items, blockShape).map(({ kv, value }) => ({ block: value, kv }));
  }

  /** Addresses a node holds in a block another node (or no node) owns: each is routed as a /32. */
  async borrowed(): Promise<Array<{ address: string; node: string; block: string; owner: string; handle: string }>> {
    return (await this.blocks()).flatMap(({ block }) =>
      Object.entries(block.allocations)
        .filter(([, a]) => block.affinity !== affinityOf(a.node))
        .map(([ord, a]) => ({ address: addressAt(block, Number(ord)), node: a.node, block: block.cidr, owner: nodeOfAffinity(block.affinity) ?? "(none)", handle: a.handle })),
    );
  }

  /** The addresses given to workloads (not nodes' tunnel addresses) from a pool's blocks. */
  async workloadAddresses(pool: string): Promise<Array<{ address: string; handle: string; node: string }>> {
    return (await this.blocks())
      .filter(({ block }) => block.pool === pool)
      .flatMap(({ block }) => Object.entries(block.allocations).map(([ord, a]) => ({ address: addressAt(block, Number(ord)), ...a })))
      .filter((a) => !a.handle.startsWith(TUNNEL_HANDLE_PREFIX));
  }

  /** Pools that give this node addresses for use: the named ones when asked for (ipv4_pools), otherwise the automatic ones. */
  private async usablePools(labels: Labels, use: "Workload" | "Tunnel", named?: string[]): Promise<IPPool[]> {
    const pools = (await this.pools()).filter(
      (p) => !p.spec.disabled && !p.spec.cidr.includes(":") && (p.spec.allowedUses ?? ["Workload", "Tunnel"]).includes(use) && selects(p.spec.nodeSelector, labels) && (named ? named.includes(p.metadata.name) : p.spec.assignmentMode !== "Manual"),
    );
    return pools.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  private queues = new Map<string, Promise<unknown>>();

  /** Assigns one address; retries lost races. Assignments for one node in this
   * process run one at a time, so concurrent requests do not each claim a block. */
  assign(req: AssignRequest): Promise<{ address: string; block: string }> {
    return this.queued(req.node, () => this.assignNow(req));
  }

  /** Runs fn after the node's earlier assignments in this process. */
  private queued<T>(node: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.queues.get(node) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.queues.set(node, next);
    return next;
  }

  private async assignNow(req: AssignRequest): Promise<{ address: string; block: string }> {
    const labels = req.labels ?? {};
    const use = req.use ?? "Workload";
    const pools = await this.usablePools(labels, use, req.pools);
    if (pools.length === 0) throw new IPAMError(`No IPs available in pools: [] (no enabled IPv4 pool${req.pools ? ` of ${req.pools.join(", ")}` : ""} selects node ${req.node}${use === "Tunnel" ? " for tunnel addresses" : ""})`);
    const inPools = (b: Block) => pools.some((p) => p.metadata.name === b.pool);
    const alloc: Allocation = { handle: req.handle, node: req.node };
    const reserved = reservedBy(await this.reservations());
    const config = await this.settings();
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      try {
        const blocks = await this.blocks();
        // 1. A block this node already owns.
        const own = blocks.filter((x) => x.block.affinity === affinityOf(req.node) && inPools(x.block));
        for (const { block, kv } of own) {
          const ord = freeOrdinal(block, reserved);
          if (ord !== undefined) return await this.take(block, kv, ord, alloc);
        }
        // 2. A new block, claimed by creating it, unless the node has as many as maxBlocksPerHost allows.
        const atLimit = config.maxBlocksPerHost > 0 && own.length >= config.maxBlocksPerHost;
        const taken = new Set(blocks.map((x) => x.block.cidr));
        let lostClaim = false;
        for (const pool of atLimit ? [] : pools) {
          for (const cidr of candidateBlocks(pool, req.node)) {
            if (taken.has(cidr)) continue;
            const block: Block = { cidr, pool: pool.metadata.name, affinity: affinityOf(req.node), allocations: {} };
            const ord = freeOrdinal(block, reserved);
            if (ord === undefined) continue; // every address of it reserved: no use claiming it
            block.allocations[String(ord)] = alloc;
            try {
              await this.store.txn([{ op: "create", key: blockKey(cidr), value: JSON.stringify(block) }]);
              return { address: addressAt(block, ord), block: cidr };
            } catch (err) {
              if (err instanceof ConflictError) {
                lostClaim = true; // someone claimed it first
                continue;
              }
              throw err;
            }
          }
        }
        // Our view was stale: look again before borrowing or giving up.
        if (lostClaim) throw new ConflictError(BLOCK_PREFIX);
        // 3. Borrow one address from another node's block.
        if (!config.strictAffinity) {
          for (const { block, kv } of blocks.filter((x) => inPools(x.block))) {
            const ord = freeOrdinal(block, reserved);
            if (ord !== undefined) return await this.take(block, kv, ord, alloc);
          }
        }
        // Said when a setting, not the pools, is what stopped it.
        const why = [
          ...(atLimit ? [`node ${req.node} has ${own.length} block${own.length === 1 ? "" : "s"}, as many as maxBlocksPerHost (${config.maxBlocksPerHost}) allows`] : []),
          ...(config.strictAffinity && blocks.some((x) => inPools(x.block) && x.block.affinity !== affinityOf(req.node) && freeOrdinal(x.block, reserved) !== undefined) ? ["strictAffinity keeps it from borrowing the free addresses of other nodes' blocks"] : []),
        ];
        throw new IPAMError(`No IPs available in pools: [${pools.map((p) => p.spec.cidr).join(" ")}]${why.length ? ` (${why.join("; ")}: weft ipam configure changes that)` : ""}`);
      } catch (err) {
        if (err instanceof ConflictError) continue;
        throw err;
      }
    }
    throw new IPAMError(`gave up assigning an address for ${req.handle} after ${MAX_RETRIES} conflicting attempts; try again`);
  }

  /**
   * Assigns a given address (CNI_ARGS IP, runtimeConfig ips), as Calico's AssignIP does:
   * it must lie in an enabled IPv4 pool that gives Workload addresses; IPReservations do
   * not hold it back (they govern automatic assignment). A block nobody claimed yet is
   * claimed for this node (with no affinity once it has maxBlocksPerHost); in another
   * node's block the address is borrowed, which strictAffinity forbids. Assigning an
   * address its handle already holds returns it.
   */
  assignIP(req: { node: string; handle: string; address: string }): Promise<{ address: string; block: string }> {
    return this.queued(req.node, () => this.assignIPNow(req));
  }

  private async assignIPNow(req: { node: string; handle: string; address: string }): Promise<{ address: string; block: string }> {
    const a = parseIPv4(req.address);
    if (a === undefined) throw new IPAMError(`"${req.address}" is not an IPv4 address`);
    const pool = poolHolding(await this.pools(), a);
    if (!pool) throw new IPAMError(`${req.address} is in no IP pool: a requested address must be in one`);
    if (pool.spec.disabled) throw new IPAMError(`${req.address} is in IPPool(${pool.metadata.name}), which is disabled`);
    if (!(pool.spec.allowedUses ?? ["Workload", "Tunnel"]).includes("Workload")) throw new IPAMError(`${req.address} is in IPPool(${pool.metadata.name}), whose allowedUses do not include Workload`);
    const config = await this.settings();
    const alloc: Allocation = { handle: req.handle, node: req.node };
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      try {
        const blocks = await this.blocks();
        const at = blockHolding(blocks, a);
        if (at) {
          const { found: { block, kv }, ord } = at;
          const held = block.allocations[String(ord)];
          if (held) {
            if (held.handle === req.handle && held.node === req.node) return { address: req.address, block: block.cidr };
            throw new IPAMError(`${req.address} is already in use (handle ${held.handle}, node ${held.node})`);
          }
          const owner = nodeOfAffinity(block.affinity);
          if (owner !== req.node && owner !== undefined && config.strictAffinity) {
            throw new IPAMError(`${req.address} is in node ${owner}'s block ${block.cidr}, and strictAffinity keeps a node from borrowing from other nodes' blocks`);
          }
          return await this.take(block, kv, ord, alloc);
        }
        // Nobody claimed its block yet: claim it, unless the node has as many as it may.
        const size = pool.spec.blockSize ?? 26;
        const base = (a & maskOf(size)) >>> 0;
        const own = blocks.filter((x) => x.block.affinity === affinityOf(req.node) && x.block.pool === pool.metadata.name).length;
        const atLimit = config.maxBlocksPerHost > 0 && own >= config.maxBlocksPerHost;
        if (atLimit && config.strictAffinity) throw new IPAMError(`${req.address} would need a new block for node ${req.node}, which has ${own}, as many as maxBlocksPerHost (${config.maxBlocksPerHost}) allows, and strictAffinity keeps it from using one it does not own`);
        const block: Block = { cidr: `${formatIPv4(base)}/${size}`, pool: pool.metadata.name, affinity: atLimit ? null : affinityOf(req.node), allocations: { [String(a - base)]: alloc } };
        await this.store.txn([{ op: "create", key: blockKey(block.cidr), value: JSON.stringify(block) }]);
        return { address: req.address, block: block.cidr };
      } catch (err) {
        if (err instanceof ConflictError) continue;
        throw err;
      }
    }
    throw new IPAMError(`gave up assigning ${req.address} for ${req.handle} after ${MAX_RETRIES} conflicting attempts; try again`);
  }

  private async take(block: Block, kv: KV, ord: number, alloc: Allocation): Promise<{ address: string; block: string }> {
    const next: Block = { ...block, allocations: { ...block.allocations, [String(ord)]: alloc } };
    await this.store.txn([{ op: "update", key: kv.key, value: JSON.stringify(next), modRevision: kv.modRevision }]);
    return { address: addressAt(block, ord), block: block.cidr };
  }

  /** The block an address is in, and its ordinal there. */
  private async locate(address: string): Promise<{ found: StoredBlock; ord: string } | undefined> {
    const a = parseIPv4(address);
    if (a === undefined) throw new IPAMError(`"${address}" is not an IPv4 address`);
    const at = blockHolding(await this.blocks(), a);
    return at && { found: at.found, ord: String(at.ord) };
  }

  /** Who holds an address: its handle and node, or undefined when it is free. */
  async allocationOf(address: string): Promise<Allocation | undefined> {
    return (await this.lookup(address)).allocation;
  }

  /** Where an address stands: the block holding it (if one was claimed) and its allocation (if assigned). */
  async lookup(address: string): Promise<{ block?: Block; allocation?: Allocation }> {
    const at = await this.locate(address);
    return { block: at?.found.block, allocation: at?.found.block.allocations[at.ord] };
  }

  /**
   * A node's tunnel address must come from a pool that still gives this node tunnel
   * addresses (enabled, allowedUses Tunnel, its nodeSelector), as Calico's node checks:
   * after a pool migration it moves to a pool that does. An address whose pool is gone
   * (its block is no longer routed, so replies to it would be lost) is given up even
   * when no pool offers a new one; one in a pool that still exists is kept until then.
   * Returns the address the node uses from now on.
   */
  async reconcileTunnel(node: string, labels: Labels, current: string): Promise<string | undefined> {
    const inPool = (pools: IPPool[]) => poolHolding(pools, parseIPv4(current)!) !== undefined;
    if (inPool(await this.usablePools(labels, "Tunnel"))) return current;
    const handle = `${TUNNEL_HANDLE_PREFIX}${node}`;
    let next: string | undefined;
    try {
      next = (await this.assign({ node, handle, labels, use: "Tunnel" })).address;
    } catch (err) {
      if (!(err instanceof IPAMError)) throw err;
      if (inPool(await this.pools())) return current;
    }
    await this.releaseAddress(current);
    return next;
  }

  /** Releases one address; false when it was not assigned. */
  async releaseAddress(address: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const at = await this.locate(address);
      if (!at) return false;
      const { found, ord } = at;
      if (!(ord in found.block.allocations)) return false;
      const allocations = { ...found.block.allocations };
      delete allocations[ord];
      try {
        await this.store.txn([{ op: "update", key: found.kv.key, value: JSON.stringify({ ...found.block, allocations }), modRevision: found.kv.modRevision }]);
        return true;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new IPAMError(`gave up releasing ${address} after ${MAX_RETRIES} conflicting attempts; try again`);
  }

  /** Releases every address with this handle; returns them. */
  async releaseByHandle(handle: string): Promise<string[]> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const released: string[] = [];
      try {
        for (const { block, kv } of await this.blocks()) {
          const mine = Object.entries(block.allocations).filter(([, al]) => al.handle === handle);
          if (mine.length === 0) continue;
          const allocations = Object.fromEntries(Object.entries(block.allocations).filter(([, al]) => al.handle !== handle));
          await this.store.txn([{ op: "update", key: kv.key, value: JSON.stringify({ ...block, allocations }), modRevision: kv.modRevision }]);
          released.push(...mine.map(([ord]) => addressAt(block, Number(ord))));
        }
        return released;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new IPAMError(`gave up releasing handle ${handle} after ${MAX_RETRIES} conflicting attempts; try again`);
  }

  /**
   * What deleting a Node cleans up, as calicoctl does: the node's tunnel address and
   * its blocks no address is left in. Blocks still holding addresses stay as they are;
   * their addresses are returned.
   */
  async releaseNode(node: string): Promise<{ tunnel: string[]; freedBlocks: string[]; stillAllocated: string[] }> {
    const tunnel = await this.releaseByHandle(`${TUNNEL_HANDLE_PREFIX}${node}`);
    const freedBlocks: string[] = [];
    const stillAllocated: string[] = [];
    for (const { block, kv } of await this.blocks()) {
      if (block.affinity !== affinityOf(node)) continue;
      const used = Object.keys(block.allocations);
      if (used.length) {
        stillAllocated.push(...used.map((o) => addressAt(block, Number(o))));
        continue;
      }
      try {
        await this.store.txn([{ op: "delete", key: kv.key, modRevision: kv.modRevision }]);
        freedBlocks.push(block.cidr);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err; // an address was taken meanwhile: the block stays
      }
    }
    return { tunnel, freedBlocks, stillAllocated };
  }

  /**
   * What IPAM holds for nodes that no longer exist (as calicoctl ipam check reports):
   * addresses assigned to them (their pods went with them), their tunnel addresses, and
   * empty blocks still affine to them. Also tunnel addresses a live node does not use
   * (its Node names another), which are reported but never released here: the node may
   * be between claiming one and recording it. nodes: each Node's name and tunnel address.
   */
  async check(nodes: Map<string, string | undefined>): Promise<IPAMFinding[]> {
    const findings: IPAMFinding[] = [];
    for (const { block } of await this.blocks()) {
      const owner = nodeOfAffinity(block.affinity);
      for (const [ord, a] of Object.entries(block.allocations)) {
        const address = addressAt(block, Number(ord));
        const tunnelOf = a.handle.startsWith(TUNNEL_HANDLE_PREFIX) ? a.handle.slice(TUNNEL_HANDLE_PREFIX.length) : undefined;
        if (!nodes.has(a.node)) findings.push({ what: tunnelOf ? "tunnel address of a deleted node" : "address of a deleted node", address, node: a.node, block: block.cidr, handle: a.handle, releasable: true });
        else if (tunnelOf && nodes.get(tunnelOf) !== address) findings.push({ what: "tunnel address its node does not use", address, node: a.node, block: block.cidr, handle: a.handle, releasable: false });
      }
      if (owner && !nodes.has(owner) && Object.keys(block.allocations).length === 0) findings.push({ what: "empty block affine to a deleted node", node: owner, block: block.cidr, releasable: true });
    }
    return findings;
  }

  /**
   * Releases what check() found releasable: each address if it is still held as found,
   * each empty block if it still is (skipped if taken meanwhile), then the blocks of
   * deleted nodes those releases left empty.
   */
  async releaseFindings(findings: IPAMFinding[], nodes: Map<string, string | undefined>): Promise<string[]> {
    const done = await this.releaseOnce(findings);
    if (findings.some((f) => f.releasable && f.address)) {
      done.push(...(await this.releaseOnce((await this.check(nodes)).filter((f) => f.what === "empty block affine to a deleted node"))));
    }
    return done;
  }

  private async releaseOnce(findings: IPAMFinding[]): Promise<string[]> {
    const done: string[] = [];
    for (const f of findings.filter((x) => x.releasable)) {
      if (f.address) {
        const now = await this.allocationOf(f.address);
        if (now && now.handle === f.handle && now.node === f.node && (await this.releaseAddress(f.address))) done.push(f.address);
      } else {
        const stored = (await this.blocks()).find((b) => b.block.cidr === f.block);
        if (!stored || stored.block.affinity !== affinityOf(f.node) || Object.keys(stored.block.allocations).length) continue;
        try {
          await this.store.txn([{ op: "delete", key: stored.kv.key, modRevision: stored.kv.modRevision }]);
          done.push(f.block);
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      }
    }
    return done;
  }

  /** Addresses assigned under a handle. */
  async addressesOf(handle: string): Promise<string[]> {
    return (await this.blocks()).flatMap(({ block }) =>
      Object.entries(block.allocations)
        .filter(([, al]) => al.handle === handle)
        .map(([ord]) => addressAt(block, Number(ord))),
    );
  }
}

/** The stored block an IPv4 address (as a number) lies in, and its ordinal there. */
function blockHolding(blocks: StoredBlock[], a: number): { found: StoredBlock; ord: number } | undefined {
  for (const found of blocks) {
    const c = parseCIDR(found.block.cidr)!;
    if (contains(c, a)) return { found, ord: a - c.addr };
  }
  return undefined;
}

/** The IPv4 pool an address (as a number) or a prefix lies in, if any. */
export function poolHolding(pools: IPPool[], at: number | Prefix): IPPool | undefined {
  const inner = typeof at === "number" ? { addr: at, len: 32 } : at;
  return pools.find((p) => {
    const c = parseCIDR(p.spec.cidr, true);
    return c !== undefined && within(inner, c);
  });
}

/** Whether an IPv4 address (as a number) lies in one of these IPReservation entries (IPv6 ones never match). */
export function reservedBy(entries: string[]): (address: number) => boolean {
  const prefixes = entries.map((c) => parseCIDR(reservationCIDR(c), false)).filter((p): p is NonNullable<typeof p> => p !== undefined);
  return (a) => prefixes.some((p) => contains(p, a));
}

/** A pool's nodeSelector against a node's labels; one that does not parse (a pool written
 * around the validator) selects no node. */
function selects(selector: string, labels: Labels): boolean {
  const sel = selectorOrError(selector);
  return !(sel instanceof SelectorError) && sel(labels);
}

/** The shape of a stored block. */
const blockShape = (v: Record<string, unknown>) => {
  const c = typeof v.cidr === "string" ? parseCIDR(v.cidr) : undefined;
  if (!c || typeof v.pool !== "string" || (v.affinity !== null && typeof v.affinity !== "string") || typeof v.allocations !== "object" || v.allocations === null) return false;
  // Each allocation at an ordinal inside the block, with its handle and node.
  return Object.entries(v.allocations).every(([ord, a]) => /^\d{1,10}$/.test(ord) && Number(ord) < 2 ** (32 - c.len) && typeof a === "object" && a !== null && typeof (a as Allocation).handle === "string" && typeof (a as Allocation).node === "string");
};

/** The blocks of a listing of BLOCK_PREFIX that are blocks (the rest noted in unreadableRecords). */
export function parseBlocks(items: KV[]): Block[] {
  return readRecords<Block>(BLOCK_PREFIX, items, blockShape).map((r) => r.value);
}

/** A node's own blocks by pool: how many, and their addresses in use and not (the weft_ipam_* metrics). */
export function nodeBlockUsage(node: string, blocks: Block[]): Array<{ pool: string; blocks: number; inUse: number; free: number }> {
  const byPool = new Map<string, { pool: string; blocks: number; inUse: number; free: number }>();
  for (const b of blocks) {
    if (nodeOfAffinity(b.affinity) !== node) continue;
    const e = byPool.get(b.pool) ?? { pool: b.pool, blocks: 0, inUse: 0, free: 0 };
    const used = Object.keys(b.allocations).length;
    e.blocks++;
    e.inUse += used;
    e.free += blockSizeOf(b) - used;
    byPool.set(b.pool, e);
  }
  return [...byPool.values()].sort((a, b) => a.pool.localeCompare(b.pool));
}

/** IPAM over a datastore's own IP pools and IPReservations (what every caller wants). */
export function ipamFor(store: Datastore, res = new Resources(store)): IPAM {
  return new IPAM(store, () => res.list<IPPool>("IPPool"), async () => (await res.list<IPReservation>("IPReservation")).flatMap((r) => r.spec.reservedCIDRs), () => readIPAMConfig(res));
}

/** The pool's blocks in a node-specific order (fewer collisions, stable across restarts). */
export function* candidateBlocks(pool: IPPool, node: string): Generator<string> {
  const [base, lenText] = pool.spec.cidr.split("/");
  const len = Number(lenText);
  const size = pool.spec.blockSize ?? 26;
  const count = 2 ** (size - len);
  const start = createHash("sha1").update(node).digest().readUInt32BE(0) % count;
  const b = parseIPv4(base)!;
  for (let i = 0; i < count; i++) {
    const k = (start + i) % count;
    yield `${formatIPv4((b + k * 2 ** (32 - size)) >>> 0)}/${size}`;
  }
}

export { addressAt };
