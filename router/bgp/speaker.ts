// The BGP speaker: a listener that accepts only configured peers, a session per
// peer, the RIB, and what goes out: our own blocks (next hop self, LOCAL_PREF 100 on
// iBGP, the communities prefixAdvertisements give them), the routes inside the pools we
// learned from peers (passed on as BGP passes routes on, as Calico's BIRD does) and, on
// a route reflector, the best paths of clients (RFC 4456).
import net from "node:net";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { native } from "../native/index.js";
import { Session, type LocalConfig, type PeerConfig } from "./session.js";
import { Rib, cidrOf, prefixOf, prependPath, type Path } from "./rib.js";
import { encodeEndOfRib, encodeUpdates, isEndOfRib, type Attributes, type Update } from "./wire.js";
import { addCommunities, type CommunitiesOf } from "./communities.js";
import { applyRules } from "./filters.js";

export interface SpeakerConfig extends LocalConfig {
  listenPort: number;
  listenAddress?: string;
  /** Set on a route reflector: its cluster ID. */
  clusterId?: string;
}

export interface PeerStatus {
  address: string;
  type: string;
  state: "up" | "start" | "down";
  since: Date;
  info: string;
  prefixesReceived: number;
  /** Prefixes the peer has from us (0 while the session is not Established). */
  prefixesSent: number;
  /** Times the session reached Established since the node started (or the peer's settings last changed). */
  established: number;
  node?: string;
  /** With BGPPeer filters: their names, the received routes the import rules rejected, and the routes the export rules kept from the peer. */
  filters?: { names: string[]; importRejected: number; exportRejected: number };
}

interface Out {
  attrsKey: string;
  attrs: Attributes;
}

/** What a session's sync needs for every prefix it exports. */
interface ExportContext {
  ibgp: boolean;
  rules: NonNullable<PeerConfig["filters"]>["export"];
  nextHop: (p: Path) => string;
}

export class Speaker extends EventEmitter<{ routes: [] }> {
  private readonly sessions = new Map<string, Session>();
  private readonly adjOut = new Map<string, Map<string, Out>>();
  private readonly staleTimers = new Map<string, NodeJS.Timeout>();
  private readonly eorFrom = new Set<string>();
  /** Prefixes each session's export rules hold back. */
  private readonly exportRejected = new Map<string, Set<string>>();
  private server?: net.Server;
  private listenFd = -1;
  private gtsm = false;
  private readonly md5Keys = new Map<string, string>();
  private exports = new Set<string>();
  private communitiesOf: CommunitiesOf = () => ({});
  /** Which learned prefixes we pass on to other peers: those inside a pool whose routes go out over BGP. */
  private passOn: (cidr: string) => boolean = () => false;
  readonly rib = new Rib();

  constructor(
    readonly cfg: SpeakerConfig,
    private readonly log: Logger,
  ) {
    super();
  }

  async listen(): Promise<void> {
    await this.listenOn(this.cfg.listenPort, this.cfg.listenAddress);
  }

  // The listening socket is made by the addon (bound here, listened on by node) so
  // peers with a password can have their TCP MD5 key on it.
  private async listenOn(port: number, address = "0.0.0.0"): Promise<void> {
    const server = net.createServer((socket) => this.incoming(socket));
    const fd = native().tcpSocket(address, port);
    await new Promise<void>((resolve, reject) => {
      // node owns the fd from here (it closes it with the server): no close of our own.
      server.once("error", reject);
      server.listen({ fd }, () => resolve());
    });
    this.server = server;
    this.listenFd = fd;
    for (const [address, key] of this.md5Keys) native().tcpMd5(fd, address, key);
    if (this.gtsm) native().tcpTtlSecurity(fd, 255);
  }

  /**
   * With a GTSM peer the listener sends with TTL 255 (hops 255: no minimum), so the
   * SYN-ACK reaches a peer that drops anything lower; each accepted session then gets
   * its own minimum (Session.accept).
   */
  private setListenerTtl(peers: PeerConfig[]): void {
    const want = peers.some((p) => p.ttlSecurity);
    if (want === this.gtsm) return;
    if (this.listenFd >= 0) native().tcpTtlSecurity(this.listenFd, want ? 255 : 0);
    this.gtsm = want;
  }

  /** Puts each peer's TCP MD5 key on the listener (and takes off those no longer wanted). */
  private setListenerKeys(peers: PeerConfig[]): void {
    const want = new Map(peers.filter((p) => p.password).map((p) => [p.address, p.password!]));
    for (const [address, key] of want) {
      if (this.md5Keys.get(address) === key) continue;
      if (this.listenFd >= 0) native().tcpMd5(this.listenFd, address, key);
      this.md5Keys.set(address, key);
    }
    for (const address of this.md5Keys.keys()) {
      if (want.has(address)) continue;
      if (this.listenFd >= 0) native().tcpMd5(this.listenFd, address, "");
      this.md5Keys.delete(address);
    }
  }

  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? this.cfg.listenPort;
  }

  private incoming(socket: net.Socket): void {
    const from = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const s = [...this.sessions.values()].find((x) => x.peer.address === from);
    if (!s) {
      this.log.warn({ from, port: socket.remotePort }, "refused a BGP connection: not a configured peer");
      socket.destroy();
      return;
    }
    s.accept(socket);
  }

  /** Sets the peer list: new peers start, missing ones stop (Cease, peer de-configured). */
  setPeers(peers: PeerConfig[]): void {
    const want = new Map(peers.map((p) => [`${p.address}:${p.port}`, p]));
    this.setListenerKeys(peers);
    this.setListenerTtl(peers);
    const same = (a: PeerConfig, b: PeerConfig) =>
      a.as === b.as && a.passive === b.passive && a.rrClient === b.rrClient && a.type === b.type && a.password === b.password && a.keepaliveTime === b.keepaliveTime && a.restartTime === b.restartTime && a.anySource === b.anySource && a.ttlSecurity === b.ttlSecurity && a.allowLocalAs === b.allowLocalAs && a.localAs === b.localAs;
    for (const [k, s] of this.sessions) {
      const p = want.get(k);
      if (!p || !same(p, s.peer)) {
        this.changed(this.endSession(k, s, 3));
      } else {
        if (JSON.stringify(p.filters) !== JSON.stringify(s.peer.filters)) this.refilter(s, p);
        if (p.nextHopMode !== s.peer.nextHopMode) {
          s.peer.nextHopMode = p.nextHopMode;
          if (s.state === "Established") this.sync(s);
        }
      }
    }
    for (const [k, p] of want) {
      if (this.sessions.has(k)) continue;
      const s = new Session(p, this.cfg, this.log);
      this.sessions.set(k, s);
      s.on("established", () => this.onEstablished(s));
      s.on("update", (u) => this.onUpdate(s, u));
      s.on("refresh", () => this.onRefresh(s));
      s.on("down", (d) => this.onDown(s, d));
      s.start();
    }
  }

  /**
   * Applies changed local settings from the datastore. A new AS number or cluster ID
   * restarts every session (Cease 6, other configuration change), as a BIRD
   * reconfigure does; a new listen port or address re-listens (the old listener stays
   * if the new one cannot be had); a restart time applies to the next OPEN. Returns
   * the names of what changed.
   */
  async reconfigure(next: Pick<SpeakerConfig, "as" | "clusterId" | "listenPort" | "listenAddress" | "restartTime">): Promise<string[]> {
    const keys = ["as", "clusterId", "listenPort", "listenAddress", "restartTime"] as const;
    const changed: string[] = keys.filter((k) => this.cfg[k] !== next[k]);
    if ((changed.includes("listenPort") || changed.includes("listenAddress")) && this.server) {
      const old = this.server;
      try {
        await this.listenOn(next.listenPort, next.listenAddress);
        old.close();
      } catch (err) {
        // The same port on another address overlaps the old listener (one address to
        // every address): close it first, and listen there again if the new one fails.
        let moved = false;
        if (next.listenPort === this.cfg.listenPort) {
          // close() frees the port at once; its callback waits for accepted sessions, which live on.
          old.close();
          await new Promise((r) => setImmediate(r));
          moved = await this.listenOn(next.listenPort, next.listenAddress).then(() => true, () => false);
          if (!moved) await this.listenOn(this.cfg.listenPort, this.cfg.listenAddress);
        } else this.server = old;
        if (!moved) {
          this.log.error({ listenPort: next.listenPort, listenAddress: next.listenAddress ?? "0.0.0.0", err: (err as Error).message }, "cannot listen on the new BGP port or address; still listening on the old one");
          next = { ...next, listenPort: this.cfg.listenPort, listenAddress: this.cfg.listenAddress };
          changed.splice(0, changed.length, ...keys.filter((k) => this.cfg[k] !== next[k]));
        }
      }
    }
    const restart = changed.includes("as") || changed.includes("clusterId");
    Object.assign(this.cfg, next);
    if (restart) {
      this.log.info({ as: this.cfg.as, clusterId: this.cfg.clusterId ?? null }, "local AS or cluster ID changed: restarting every BGP session");
      let dropped = false;
      for (const [k, s] of this.sessions) dropped = this.endSession(k, s, 6).length > 0 || dropped;
      if (dropped) this.emit("routes");
    }
    return changed;
  }

  /**
   * New filters on a live session, as BIRD applies a changed filter: the routes it sent
   * are run through the import rules again (they are kept, filtered or not), and what
   * goes out is synced; the session stays up.
   */
  private refilter(s: Session, p: PeerConfig): void {
    s.peer.filters = p.filters;
    const ibgp = this.ibgp(s);
    this.log.info({ peer: s.peer.address, filters: p.filters?.names ?? [] }, "BGP filters of this peer changed: its routes are filtered again");
    this.changed(this.rib.refilter(s.key, (path) => this.importFilter(s, path, ibgp)));
    if (s.state === "Established") this.sync(s);
  }

  /** Runs a received route through the session's import rules: sets whether they rejected it, and what their operations made of its attributes. */
  private importFilter(s: Session, p: Path, ibgp: boolean): void {
    const received = p.receivedAttrs ?? p.attrs;
    const rules = s.peer.filters?.import ?? [];
    const after = rules.length ? applyRules(rules, { prefix: prefixOf(p.prefix), fromPeer: true, attrs: received }, ibgp) : received;
    p.filtered = after === undefined || undefined;
    p.attrs = after && after !== received ? { ...received, ...after } : received;
    p.receivedAttrs = after && after !== received ? received : undefined;
  }

  /** Ends a session with Cease/subcode and forgets it and its routes; returns the prefixes whose best path changed. */
  private endSession(k: string, s: Session, subcode: number): string[] {
    s.stop(true, subcode);
    this.sessions.delete(k);
    this.adjOut.delete(k);
    this.eorFrom.delete(k);
    this.exportRejected.delete(k);
    return this.rib.dropPeer(k);
  }

  /**
   * Our own prefixes to announce (CIDRs), the communities each carries (BGPConfiguration
   * prefixAdvertisements), and which prefixes learned from peers we pass on (Calico's
   * BIRD exports every route inside a pool, wherever it learned it).
   */
  setExports(cidrs: string[], communitiesOf: CommunitiesOf = () => ({}), passOn: (cidr: string) => boolean = () => false): void {
    this.exports = new Set(cidrs);
    this.communitiesOf = communitiesOf;
    this.passOn = passOn;
    for (const s of this.sessions.values()) if (s.state === "Established") this.sync(s);
  }

  private ibgp(s: Session): boolean {
    return s.peer.as === s.localAs;
  }

  /**
   * What peer s should have from us for one prefix (undefined: nothing), given the
   * session's export context; a prefix its export rules refuse goes into `rejected`.
   */
  private wantedOne(s: Session, c: string, x: ExportContext, rejected: Set<string>): Attributes | undefined {
    // The route as the export rules leave it (their operations applied), or undefined when they reject it.
    // They see a route as it is before our AS goes on its path (BIRD's export filter).
    const passes = (fromPeer: boolean, attrs: Attributes): Attributes | undefined => {
      const after = x.rules.length ? applyRules(x.rules, { prefix: prefixOf(c), fromPeer, attrs }, x.ibgp) : attrs;
      if (!after) rejected.add(c);
      return after && { ...attrs, ...after };
    };
    if (this.exports.has(c)) {
      const own = passes(false, { asPath: [], ...this.communitiesOf(c) });
      // Our AS goes in front on eBGP, after what the rules put there (BIRD prepends it after the export filter).
      if (own) return { ...own, origin: 0, asPath: x.ibgp ? own.asPath : prependPath(own.asPath, [s.localAs]), nextHop: this.cfg.routerId, ...(x.ibgp ? { localPref: 100 } : {}) };
    }
    // Routes learned from peers. iBGP-learned toward an iBGP peer: reflected when we are a
    // reflector (RFC 4456: client routes to everyone, non-client routes to clients only),
    // never otherwise. Anything else is passed on when it lies inside the pools: to an
    // eBGP peer with our AS in front, without the attributes that stay in an AS; to an
    // iBGP peer (then it was learned over eBGP) with a LOCAL_PREF.
    const p = this.rib.bestPath(c);
    if (!p || p.peer === s.key) return undefined;
    if (x.ibgp && p.ibgp) {
      if (!this.cfg.clusterId || (!this.sessions.get(p.peer)?.peer.rrClient && !s.peer.rrClient)) return undefined;
      const reflected = passes(true, p.attrs);
      return reflected && { ...reflected, nextHop: x.nextHop(p), originatorId: p.attrs.originatorId ?? p.peerRouterId, clusterList: [this.cfg.clusterId, ...(p.attrs.clusterList ?? [])] };
    }
    if (!this.passOn(c)) return undefined;
    // prefixAdvertisements' communities go on every route we announce inside their CIDR, as on our own.
    const after = passes(true, addCommunities(p.attrs, this.communitiesOf(c)));
    if (!after) return undefined;
    if (x.ibgp) return { ...after, localPref: after.localPref ?? 100, nextHop: x.nextHop(p) };
    const { med: _med, localPref: _localPref, originatorId: _originatorId, clusterList: _clusterList, ...kept } = after;
    return { ...kept, asPath: prependPath(kept.asPath, [s.localAs]), nextHop: x.nextHop(p) };
  }

  /**
   * Sends peer s the difference between what it has and what it should have: for every
   * prefix, or only for `only` (those whose best path just changed: a peer's table of
   * 100,000 routes then costs each session work per route, not per route and UPDATE).
   */
  private sync(s: Session, only?: Iterable<string>): void {
    const sent = this.adjOut.get(s.key) ?? new Map<string, Out>();
    this.adjOut.set(s.key, sent);
    const ibgp = this.ibgp(s);
    // The next hop of a route passed on or reflected: ourselves toward an eBGP peer and
    // as learned toward an iBGP one (BIRD's default), unless the peer's nextHopMode says.
    const mode = s.peer.nextHopMode ?? (ibgp ? "Keep" : "Self");
    const x: ExportContext = { ibgp, rules: s.peer.filters?.export ?? [], nextHop: (p) => (mode === "Self" ? this.cfg.routerId : (p.attrs.nextHop ?? p.peerAddress)) };
    let rejected = this.exportRejected.get(s.key);
    if (!only || !rejected) this.exportRejected.set(s.key, (rejected = new Set()));
    const candidates = only ?? new Set([...this.exports, ...this.rib.bestPrefixes(), ...sent.keys()]);
    const withdraw: string[] = [];
    const groups = new Map<string, { attrs: Attributes; prefixes: string[] }>();
    for (const c of candidates) {
      rejected.delete(c);
      const attrs = this.wantedOne(s, c, x, rejected);
      if (!attrs) {
        if (sent.delete(c)) withdraw.push(c);
        continue;
      }
      const k = JSON.stringify(attrs);
      if (sent.get(c)?.attrsKey === k) continue;
      const g = groups.get(k) ?? { attrs, prefixes: [] };
      g.prefixes.push(c);
      groups.set(k, g);
      sent.set(c, { attrsKey: k, attrs });
    }
    if (withdraw.length) for (const m of encodeUpdates(withdraw.map(prefixOf), {}, [])) s.send(m);
    for (const g of groups.values()) for (const m of encodeUpdates([], g.attrs, g.prefixes.map(prefixOf))) s.send(m);
  }

  private onEstablished(s: Session): void {
    // RFC 4724 4.2: a peer back without graceful restart for IPv4, or without its
    // forwarding state, will not stand behind its old routes: drop them now, not at the
    // end of its restart time (it sends what it has again).
    const gr = s.peerGracefulRestart;
    if (!gr?.forwarding) {
      clearTimeout(this.staleTimers.get(s.key));
      const gone = this.rib.sweepStale(s.key);
      if (gone.length) {
        this.log.info({ peer: s.peer.address, routes: gone.length, why: gr ? "forwarding state not kept" : "no graceful restart this time" }, "peer back without its forwarding state: dropping its stale routes");
        this.changed(gone);
      }
    }
    this.adjOut.set(s.key, new Map());
    this.sync(s);
    s.send(encodeEndOfRib());
  }

  /** ROUTE-REFRESH (RFC 2918, whose capability our OPEN carries): everything we send the peer, again (its import policy changed). */
  private onRefresh(s: Session): void {
    this.log.info({ peer: s.peer.address }, "peer asked for our routes again (ROUTE-REFRESH): sending them all");
    this.adjOut.set(s.key, new Map());
    this.sync(s);
  }

  private onUpdate(s: Session, u: Update): void {
    if (isEndOfRib(u)) {
      this.eorFrom.add(s.key);
      clearTimeout(this.staleTimers.get(s.key));
      this.changed(this.rib.sweepStale(s.key));
      this.emit("routes");
      return;
    }
    const ibgp = this.ibgp(s);
    let announce = u.nlri.map((p): Path => ({ prefix: cidrOf(p), peer: s.key, peerAddress: s.peer.address, peerRouterId: s.remote?.bgpId ?? s.peer.address, ibgp, attrs: u.attributes }));
    // Routes the import rules reject are kept as filtered: a later filter change may let them in.
    if (s.peer.filters?.import.length) for (const p of announce) this.importFilter(s, p, ibgp);
    let withdraw = u.withdrawn.map(cidrOf);
    if (u.treatAsWithdraw) {
      this.log.warn({ peer: s.peer.address, reason: u.treatAsWithdraw, prefixes: announce.length }, "UPDATE error: treating its routes as withdrawn (RFC 7606)");
      withdraw = withdraw.concat(announce.map((p) => p.prefix));
      announce = [];
    }
    // Loop checks: our own routes reflected back, our cluster in the list, our AS in an
    // eBGP path (more often than the peer's numAllowedLocalASNumbers lets it be).
    const ownAs = (p: Path) => (p.attrs.asPath ?? []).reduce((n, seg) => n + seg.asns.filter((a) => a === s.localAs).length, 0);
    const loops = (p: Path) =>
      p.attrs.originatorId === this.cfg.routerId ||
      (this.cfg.clusterId !== undefined && (p.attrs.clusterList ?? []).includes(this.cfg.clusterId)) ||
      (!ibgp && ownAs(p) > (s.peer.allowLocalAs ?? 0));
    const dropped = announce.filter(loops);
    if (dropped.length) {
      withdraw = withdraw.concat(dropped.map((p) => p.prefix));
      announce = announce.filter((p) => !loops(p));
    }
    this.changed(this.rib.update(s.key, withdraw, announce));
  }

  private onDown(s: Session, d: { reason: string; graceful: boolean; restartTime: number }): void {
    this.eorFrom.delete(s.key);
    if (d.graceful && d.restartTime > 0) {
      this.log.info({ peer: s.peer.address, restartTime: d.restartTime }, "peer down with graceful restart: keeping its routes as stale");
      this.rib.markStale(s.key);
      clearTimeout(this.staleTimers.get(s.key));
      this.staleTimers.set(
        s.key,
        setTimeout(() => {
          this.log.info({ peer: s.peer.address }, "peer did not return within its restart time: dropping its routes");
          this.changed(this.rib.sweepStale(s.key));
        }, d.restartTime * 1000),
      );
      return;
    }
    this.log.info({ peer: s.peer.address, reason: d.reason }, "peer down: withdrawing its routes");
    this.changed(this.rib.dropPeer(s.key));
  }

  /** The best paths of these prefixes changed: what we pass on (and reflect) follows them. */
  private changed(prefixes: string[]): void {
    if (!prefixes.length) return;
    for (const s of this.sessions.values()) if (s.state === "Established") this.sync(s, prefixes);
    this.emit("routes");
  }

  /**
   * Every configured peer is up and has sent End-of-RIB (true with no peers). A peer
   * without graceful restart sends no End-of-RIB, so it is waited for until the restart
   * time is over: its routes come in UPDATEs with no marker of the last one, and ending
   * the wait at Established would drop and re-add routes it is about to send.
   */
  get converged(): boolean {
    return [...this.sessions.values()].every((s) => s.state === "Established" && this.eorFrom.has(s.key));
  }

  status(): PeerStatus[] {
    return [...this.sessions.values()].map((s) => ({
      address: s.peer.address,
      type: s.peer.type,
      state: s.state === "Established" ? "up" : s.state === "Idle" ? "down" : "start",
      since: s.since,
      info: s.state === "Established" ? "Established" : `${s.state}${s.info && s.info !== s.state ? ` ${s.info}` : ""}`,
      prefixesReceived: this.rib.received(s.key),
      prefixesSent: s.state === "Established" ? (this.adjOut.get(s.key)?.size ?? 0) : 0,
      established: s.establishedCount,
      node: s.peer.node,
      ...(s.peer.filters ? { filters: { names: s.peer.filters.names, importRejected: this.rib.filtered(s.key), exportRejected: this.exportRejected.get(s.key)?.size ?? 0 } } : {}),
    }));
  }

  /** What each Established peer has from us, as it was sent (BIRD's show route export). */
  exported(): Array<{ peer: string; prefix: string; attrs: Attributes }> {
    const out: Array<{ peer: string; prefix: string; attrs: Attributes }> = [];
    for (const [k, s] of this.sessions) {
      if (s.state !== "Established") continue;
      for (const [prefix, o] of this.adjOut.get(k) ?? []) out.push({ peer: s.peer.address, prefix, attrs: o.attrs });
    }
    return out.sort((a, b) => a.peer.localeCompare(b.peer) || a.prefix.localeCompare(b.prefix));
  }

  /** Stops every session. graceful: close without NOTIFICATION, so GR peers keep our routes. */
  async stop(graceful: boolean): Promise<void> {
    for (const s of this.sessions.values()) s.stop(!graceful, 2);
    for (const t of this.staleTimers.values()) clearTimeout(t);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
