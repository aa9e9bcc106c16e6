// One BGP session (RFC 4271 section 8): the FSM for a configured peer, its
// connections (two at once during a collision), hold and keepalive timers and
// connect-retry with backoff. Every transition is logged with its reason.
import net from "node:net";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { native } from "../native/index.js";
import type { SessionFilters } from "./filters.js";
import { BgpError, CAP, decodeMessage, encodeKeepalive, encodeNotification, encodeOpen, ERR, frameLength, type Capability, type Message, type Open, type Update } from "./wire.js";

export type State = "Idle" | "Connect" | "Active" | "OpenSent" | "OpenConfirm" | "Established";
export type PeerType = "node-to-node mesh" | "global" | "node specific";

export interface PeerConfig {
  address: string;
  port: number;
  as: number;
  type: PeerType;
  /** Wait for the peer to connect (Calico's mesh: passive toward higher addresses). */
  passive: boolean;
  /** This peer is our route-reflector client. */
  rrClient?: boolean;
  holdTime?: number;
  /** Peer's node name, when it is a node. */
  node?: string;
  /** TCP MD5 password (RFC 2385), BGPPeer password. */
  password?: string;
  /** Seconds between KEEPALIVEs, when shorter than a third of the hold time (BGPPeer keepaliveTime). */
  keepaliveTime?: number;
  /** Restart time we advertise to this peer (BGPPeer maxRestartTime). */
  restartTime?: number;
  /** BGPPeer sourceAddress None: connect from whatever address the kernel picks, not the node's. */
  anySource?: boolean;
  /** BGPPeer localASNumber: the AS this node is to this peer (BIRD's local as), instead of its own. */
  localAs?: number;
  /** BGPPeer numAllowedLocalASNumbers: routes from this peer may carry our AS this many times (default 0: none). */
  allowLocalAs?: number;
  /** BGPPeer ttlSecurity: GTSM (RFC 5082), the peer at most this many hops away; our segments go with TTL 255. */
  ttlSecurity?: number;
  /** BGPPeer filters: the rules on what this session imports and exports (they change without a restart). */
  filters?: SessionFilters;
  /**
   * BGPPeer nextHopMode (or keepOriginalNextHop, which is Keep): the next hop of routes
   * passed on or reflected to this peer. Unset (Auto): ourselves toward an eBGP peer,
   * kept toward an iBGP one, as BIRD does; Self: always ourselves (BIRD's next hop self);
   * Keep: always as learned (next hop keep). Changes without a restart.
   */
  nextHopMode?: "Self" | "Keep";
}

export interface LocalConfig {
  as: number;
  routerId: string;
  holdTime: number;
  /** Graceful restart (RFC 4724): our restart time, and whether we are restarting now. */
  restartTime: number;
  restarting: boolean;
  /** Local address to connect from (the node's address). */
  localAddress?: string;
}

/** How long one turn of the event loop spends on a connection's received messages. */
const RECEIVE_BUDGET_MS = 5;

class Conn {
  private buf: Buffer = Buffer.alloc(0);
  remoteOpen?: Open;
  /** An incoming connection whose OPEN waits for our own connection to the peer (see onOpen). */
  deferred?: NodeJS.Timeout;
  state: State = "Connect";
  constructor(
    readonly socket: net.Socket,
    readonly outgoing: boolean,
  ) {}
  /** A continuation of drain() is scheduled (the socket is paused meanwhile). */
  draining = false;
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }
  /**
   * Hands the whole messages received so far to onMessage, for at most budgetMs: true
   * when some are left for another turn of the event loop.
   */
  drain(onMessage: (m: Message) => void, budgetMs = Infinity): boolean {
    const start = performance.now();
    for (;;) {
      const len = frameLength(this.buf);
      if (len === undefined || this.buf.length < len) return false;
      const m = decodeMessage(this.buf.subarray(0, len));
      this.buf = this.buf.subarray(len);
      onMessage(m);
      if (this.socket.destroyed) return false;
      if (performance.now() - start >= budgetMs) return frameLength(this.buf) !== undefined;
    }
  }
  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }
}

export interface SessionEvents {
  established: [];
  update: [Update];
  /** The peer asked for our routes again (ROUTE-REFRESH, RFC 2918), for IPv4 unicast. */
  refresh: [];
  /** graceful: the peer may come back and its routes are kept as stale meanwhile. */
  down: [{ reason: string; graceful: boolean; restartTime: number }];
  state: [State];
}

export class Session extends EventEmitter<SessionEvents> {
  state: State = "Idle";
  /** The AS this session speaks as: the BGPPeer's localASNumber, or the node's. */
  get localAs(): number {
    return this.peer.localAs ?? this.local.as;
  }
  since = new Date();
  info = "";
  /** How many times this session has reached Established (a flapping peer counts up). */
  establishedCount = 0;
  private conns: Conn[] = [];
  private established?: Conn;
  private holdTimer?: NodeJS.Timeout;
  private keepaliveTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private retryDelay = 1000;
  /** How the session last failed, while it keeps failing (its retries are logged at debug). */
  private failing?: string;
  private stopped = false;
  negotiatedHold = 0;
  remote?: Open;

  constructor(
    readonly peer: PeerConfig,
    private readonly local: LocalConfig,
    private readonly log: Logger,
  ) {
    super();
  }

  get key(): string {
    return `${this.peer.address}:${this.peer.port}`;
  }

  /** Whether the peer advertised graceful restart for IPv4 unicast (RFC 4724: only the
   * families listed are kept; "aware"-only speakers such as BIRD's default list none). */
  get peerGracefulRestart(): { restartTime: number; forwarding: boolean } | undefined {
    const gr = this.remote?.capabilities.find((c): c is Extract<Capability, { code: 64 }> => c.code === CAP.GRACEFUL_RESTART && "families" in c);
    const ipv4 = gr?.families.find((f) => f.afi === 1 && f.safi === 1);
    return gr && ipv4 ? { restartTime: gr.restartTime, forwarding: ipv4.forwarding } : undefined;
  }

  private transition(to: State, reason: string): void {
    if (this.state === to && this.info === reason) return;
    // A peer that stays unreachable (a node down for maintenance) fails the same way at
    // every retry, every 10 s for as long as it is gone: said at info once, then at debug
    // until it fails otherwise or comes up. (Three lines per retry per dead peer was
    // 300 lines a second with 1000 of them; BIRD says it once per 120 s retry.)
    const failure = (to === "Idle" || to === "Active") && reason !== "stopped" && reason !== "waiting for the peer to connect";
    const quiet = this.failing !== undefined && to !== "Established" && (!failure || reason === this.failing);
    if (failure) this.failing = reason;
    if (to === "Established" || reason === "stopped") this.failing = undefined;
    this.log[quiet ? "debug" : "info"]({ peer: this.peer.address, from: this.state, to, reason }, "BGP state");
    this.state = to;
    this.info = reason;
    this.since = new Date();
    if (to === "Established") this.establishedCount++;
    this.emit("state", to);
  }

  start(): void {
    this.stopped = false;
    if (this.peer.passive) this.transition("Active", "waiting for the peer to connect");
    else this.connect();
  }

  stop(notify = true, subcode = 3): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    for (const c of [...this.conns]) this.close(c, notify ? { code: ERR.CEASE, subcode } : undefined, "stopped", false);
    this.transition("Idle", "stopped");
  }

  private connect(): void {
    if (this.stopped) return;
    this.transition("Connect", "connecting");
    let socket: net.Socket;
    try {
      socket = this.peer.password || this.peer.ttlSecurity ? this.ownSocket() : net.connect({ host: this.peer.address, port: this.peer.port, localAddress: this.source() });
    } catch (err) {
      // No socket at all (the local address is gone, the kernel refuses the MD5 key): try again later.
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), 10_000);
      this.transition("Active", `Socket: ${(err as Error).message}`);
      return;
    }
    const conn = new Conn(socket, true);
    this.conns.push(conn);
    socket.setNoDelay(true);
    // ConnectRetry: a SYN that gets no answer is abandoned after 5 s and tried again
    // (the kernel alone would keep retransmitting for two minutes).
    socket.setTimeout(5000, () => {
      if (socket.connecting) socket.destroy(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" }));
    });
    socket.once("connect", () => {
      socket.setTimeout(0);
      this.opened(conn);
    });
    this.wire(conn);
  }

  private source(): string | undefined {
    return this.peer.anySource ? undefined : this.local.localAddress;
  }

  /** A connection with TCP MD5 signatures or GTSM: both must be on the socket before its SYN. */
  private ownSocket(): net.Socket {
    const n = native();
    const fd = n.tcpSocket(this.source() ?? "0.0.0.0", 0);
    try {
      if (this.peer.password) n.tcpMd5(fd, this.peer.address, this.peer.password);
      if (this.peer.ttlSecurity) n.tcpTtlSecurity(fd, this.peer.ttlSecurity);
    } catch (err) {
      n.close(fd);
      throw err;
    }
    return new net.Socket({ fd, readable: true, writable: true }).connect({ host: this.peer.address, port: this.peer.port });
  }

  /** An incoming connection from this peer's address (the speaker checked it is configured). */
  accept(socket: net.Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    // GTSM on an accepted connection: from here on, segments from further than ttlSecurity
    // hops are dropped and ours go with TTL 255. Without it, the TTL a GTSM listener gave
    // the connection is taken off (a peer must not see GTSM it was not configured for).
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    try {
      if (fd !== undefined && fd >= 0) native().tcpTtlSecurity(fd, this.peer.ttlSecurity ?? 0);
      else if (this.peer.ttlSecurity) throw new Error("no descriptor for the accepted connection");
    } catch (err) {
      this.log.warn({ peer: this.peer.address, err: (err as Error).message }, "cannot set TTL security on an accepted connection: refused it");
      socket.destroy();
      return;
    }
    const conn = new Conn(socket, false);
    if (this.established) {
      if (this.peerGracefulRestart) {
        // A new connection while Established from a GR-capable peer: it restarted.
        this.log.info({ peer: this.peer.address }, "peer reconnected while Established: treating it as a graceful restart");
        this.close(this.established, undefined, "peer restarted", true);
      } else {
        conn.send(encodeNotification(ERR.CEASE, 7));
        socket.destroy();
        return;
      }
    }
    this.conns.push(conn);
    socket.setNoDelay(true);
    this.wire(conn);
    this.opened(conn);
  }

  private wire(conn: Conn): void {
    // A peer's full table arrives as thousands of UPDATEs: they are taken a few
    // milliseconds at a time, the socket paused in between, so that the data path (on
    // this thread) and the other sessions are served between them.
    const drain = () => {
      conn.draining = false;
      try {
        if (conn.drain((m) => this.receive(conn, m), RECEIVE_BUDGET_MS) && !conn.socket.destroyed) {
          conn.draining = true;
          conn.socket.pause();
          setImmediate(drain);
        } else if (conn.socket.isPaused() && !conn.socket.destroyed) conn.socket.resume();
      } catch (err) {
        if (err instanceof BgpError) this.close(conn, { code: err.code, subcode: err.subcode, data: err.data }, err.message, false);
        else throw err;
      }
    };
    conn.socket.on("data", (chunk: Buffer) => {
      conn.push(chunk);
      if (!conn.draining) drain();
    });
    conn.socket.on("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ECONNREFUSED" ? "Connection refused" : err.code === "ETIMEDOUT" ? "Connection timed out" : err.message;
      this.close(conn, undefined, `Socket: ${why}`, conn === this.established);
    });
    conn.socket.on("close", () => this.close(conn, undefined, "Socket: connection closed", conn === this.established));
  }

  private opened(conn: Conn): void {
    const caps: Capability[] = [
      { code: 1, afi: 1, safi: 1 },
      { code: 2 },
      { code: 64, restarting: this.local.restarting, restartTime: this.peer.restartTime ?? this.local.restartTime, families: [{ afi: 1, safi: 1, forwarding: this.local.restarting }] },
      { code: 65, as: this.localAs },
    ];
    conn.send(encodeOpen({ as: this.localAs, holdTime: this.local.holdTime, bgpId: this.local.routerId, capabilities: caps }));
    conn.state = "OpenSent";
    this.transition("OpenSent", "OPEN sent");
    this.armHold(conn, 240); // RFC 4271: a large hold time until OPENs are exchanged
  }

  private receive(conn: Conn, m: Message): void {
    if (m.type === 3) {
      this.close(conn, undefined, `NOTIFICATION received: ${m.code}/${m.subcode}`, false);
      return;
    }
    switch (conn.state) {
      case "OpenSent":
        if (m.type !== 1) return this.close(conn, { code: ERR.FSM, subcode: 1 }, `expected OPEN, got message type ${m.type}`, false);
        return this.onOpen(conn, m);
      case "OpenConfirm":
        if (m.type === 4) return this.onEstablished(conn);
        return this.close(conn, { code: ERR.FSM, subcode: 2 }, `expected KEEPALIVE, got message type ${m.type}`, false);
      case "Established":
        this.armHold(conn, this.negotiatedHold);
        if (m.type === 2) this.emit("update", m);
        // RFC 2918: a request for an address family we did not advertise is ignored.
        else if (m.type === 5) {
          if (m.afi === 1 && m.safi === 1) this.emit("refresh");
          else this.log.debug({ peer: this.peer.address, afi: m.afi, safi: m.safi }, "ROUTE-REFRESH for an address family this session does not carry: ignored");
        } else if (m.type === 1) this.close(conn, { code: ERR.FSM, subcode: 3 }, "OPEN while Established", false);
        return;
      default:
        return;
    }
  }

  private onOpen(conn: Conn, o: Open): void {
    if (o.as !== this.peer.as) return this.close(conn, { code: ERR.OPEN, subcode: 2 }, `Bad peer AS: expected ${this.peer.as}, got ${o.as}`, false);
    if (o.bgpId === "0.0.0.0" || (o.bgpId === this.local.routerId && o.as === this.localAs)) return this.close(conn, { code: ERR.OPEN, subcode: 3 }, `Bad BGP identifier ${o.bgpId}`, false);
    if (o.holdTime === 1 || o.holdTime === 2) return this.close(conn, { code: ERR.OPEN, subcode: 6 }, `Unacceptable hold time ${o.holdTime}`, false);
    conn.remoteOpen = o;
    const localHigher = ipNum(this.local.routerId) > ipNum(o.bgpId);
    // Collision detection (RFC 4271 6.8): keep the connection opened by the higher BGP ID.
    const other = this.conns.find((c) => c !== conn && (c.state === "OpenConfirm" || (c.state === "OpenSent" && c.remoteOpen)));
    if (other) {
      const loser = localHigher ? [conn, other].find((c) => !c.outgoing)! : [conn, other].find((c) => c.outgoing)!;
      this.close(loser, { code: ERR.CEASE, subcode: 7 }, "connection collision resolution", false);
      if (loser === conn) return;
    } else if (localHigher && !conn.outgoing && this.conns.some((c) => c.outgoing && c.state === "OpenSent")) {
      // Our own connection, still waiting for the peer's OPEN, wins any collision. A
      // KEEPALIVE here could bring the peer to Established on this one first; then it
      // would close ours and we this one, and the session would start over (seen with
      // FRR). Hold this one until ours has an answer or fails, at most 3 s.
      conn.deferred = setTimeout(() => this.confirm(conn), 3000);
      return;
    }
    this.confirm(conn);
  }

  /** Answers a received OPEN: KEEPALIVE, OpenConfirm. */
  private confirm(conn: Conn): void {
    clearTimeout(conn.deferred);
    conn.deferred = undefined;
    if (!this.conns.includes(conn) || !conn.remoteOpen) return;
    const o = conn.remoteOpen;
    this.remote = o;
    this.negotiatedHold = Math.min(this.local.holdTime, this.peer.holdTime ?? this.local.holdTime, o.holdTime);
    conn.send(encodeKeepalive());
    conn.state = "OpenConfirm";
    this.transition("OpenConfirm", "OPEN received");
    this.armHold(conn, this.negotiatedHold);
  }

  private onEstablished(conn: Conn): void {
    conn.state = "Established";
    this.established = conn;
    for (const c of this.conns.filter((x) => x !== conn)) this.close(c, { code: ERR.CEASE, subcode: 7 }, "connection collision resolution", false);
    this.retryDelay = 1000;
    this.transition("Established", "Established");
    this.armHold(conn, this.negotiatedHold);
    if (this.negotiatedHold > 0) {
      const every = Math.max(1, Math.floor(Math.min(this.negotiatedHold / 3, this.peer.keepaliveTime ?? Infinity))) * 1000;
      this.keepaliveTimer = setInterval(() => conn.send(encodeKeepalive()), every);
    }
    this.emit("established");
  }

  /** Sends bytes on the Established connection. */
  send(bytes: Uint8Array): void {
    this.established?.send(bytes);
  }

  private armHold(conn: Conn, seconds: number): void {
    clearTimeout(this.holdTimer);
    if (seconds <= 0) return;
    this.holdTimer = setTimeout(() => this.close(conn, { code: ERR.HOLD_EXPIRED, subcode: 0 }, "Hold timer expired", true), seconds * 1000);
  }

  private close(conn: Conn, notify: { code: number; subcode: number; data?: Uint8Array } | undefined, reason: string, graceful: boolean): void {
    const i = this.conns.indexOf(conn);
    if (i < 0) return;
    this.conns.splice(i, 1);
    clearTimeout(conn.deferred);
    if (notify) {
      this.log.warn({ peer: this.peer.address, code: notify.code, subcode: notify.subcode, reason }, "sending NOTIFICATION");
      conn.send(encodeNotification(notify.code, notify.subcode, notify.data));
      conn.socket.end();
      setTimeout(() => conn.socket.destroy(), 500).unref();
    } else {
      conn.socket.destroy();
    }
    const wasEstablished = conn === this.established;
    if (wasEstablished) {
      this.established = undefined;
      clearInterval(this.keepaliveTimer);
      clearTimeout(this.holdTimer);
      const gr = this.peerGracefulRestart;
      this.emit("down", { reason, graceful: graceful && !!gr, restartTime: gr?.restartTime ?? 0 });
    }
    // Our connection failed: an incoming one held for it goes ahead.
    const held = this.conns.find((c) => c.deferred);
    if (held && !this.conns.some((c) => c.outgoing && c.state === "OpenSent")) this.confirm(held);
    if (this.conns.length > 0 || this.stopped) return;
    clearTimeout(this.holdTimer);
    const state: State = this.peer.passive ? "Active" : "Idle";
    this.transition(state, reason);
    if (!this.peer.passive) {
      clearTimeout(this.retryTimer);
      // Connect-retry with backoff and jitter: 1 s doubling to 10 s.
      const delay = this.retryDelay * (0.75 + Math.random() * 0.5);
      this.retryDelay = Math.min(this.retryDelay * 2, 10_000);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.transition("Active", reason);
    }
  }
}

export function ipNum(s: string): number {
  const p = s.split(".").map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
