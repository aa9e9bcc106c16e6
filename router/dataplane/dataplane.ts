// Owns the packet fds and moves batches between them and the fast path:
// native read into slots -> one wasm call -> native send per output channel.
import type { Logger } from "pino";
import { native, KIND_SOCK, KIND_TUN, type Native } from "../native/index.js";
import { FastPath, CH_IPIP, CH_TUN, CH_VXLAN, tallyOf } from "./fastpath.js";
import { HOST_COUNTER } from "./counters.js";

export const IPPROTO_IPIP = 4;
export const VXLAN_PORT = 4789;

export interface DataplaneOptions {
  tunName: string;
  /** Largest underlay packet; slots are sized for it. */
  underlayMTU: number;
  /** Address the VXLAN socket binds (the node's underlay address). */
  bindAddress: string;
  vxlanPort?: number;
  batch?: number;
  log: Logger;
}

export class Dataplane {
  private readonly n: Native = native();
  private tunFd = -1;
  private ipipFd = -1;
  private vxlanFd = -1;
  private polls: unknown[] = [];
  readonly slotSize: number;
  private readonly batch: number;

  constructor(
    readonly fp: FastPath,
    private readonly opts: DataplaneOptions,
  ) {
    // One slot holds the largest packet plus headroom; a power of two keeps offsets simple.
    let size = 2048;
    while (size < opts.underlayMTU + fp.headroom + 64) size *= 2;
    this.slotSize = size;
    this.batch = Math.min(opts.batch ?? Number(process.env.WEFT_BATCH ?? 64), fp.maxBatch, Math.floor(fp.x.layoutSlotsBytes() / size));
  }

  /** Opens (or adopts) the TUN and the sockets and starts forwarding. */
  start(): void {
    const { tunName, bindAddress, vxlanPort = VXLAN_PORT } = this.opts;
    this.tunFd = this.n.tunOpen(tunName);
    this.ipipFd = this.n.rawOpen(IPPROTO_IPIP);
    try {
      this.vxlanFd = this.n.udpOpen(bindAddress, vxlanPort);
    } catch (err) {
      throw new Error(`cannot bind VXLAN port ${bindAddress}:${vxlanPort} (${(err as Error).message}); is a kernel vxlan device using it?`);
    }
    this.polls.push(this.n.pollStart(this.tunFd, () => this.fromTun()));
    this.polls.push(this.n.pollStart(this.ipipFd, () => this.fromNetwork(this.ipipFd, false)));
    this.polls.push(this.n.pollStart(this.vxlanFd, () => this.fromNetwork(this.vxlanFd, true)));
  }

  stop(): void {
    for (const p of this.polls) this.n.pollStop(p);
    this.polls = [];
    for (const fd of [this.tunFd, this.ipipFd, this.vxlanFd]) if (fd >= 0) this.n.close(fd);
    this.tunFd = this.ipipFd = this.vxlanFd = -1;
  }

  private recv(fd: number, kind: number): number {
    const fp = this.fp;
    return this.n.recvBatch(fd, kind, fp.memory, fp.desc, fp.slots, this.slotSize, fp.headroom, this.batch);
  }

  private send(fd: number, kind: number, count: number, channel: number, expected: number, failCounter: number): void {
    if (expected === 0) return;
    const sent = this.n.sendBatch(fd, kind, this.fp.memory, this.fp.desc, count, channel);
    if (sent < expected) this.fp.addCounter(failCounter, expected - sent);
  }

  // A readiness callback drains at most a few batches, then yields to the loop so
  // the other directions and the control socket get their turn.
  private fromTun(): void {
    for (let round = 0; round < 8; round++) {
      const count = this.recv(this.tunFd, KIND_TUN);
      if (count === 0) return;
      this.fp.addCounter(HOST_COUNTER.tunBatches, 1);
      const t = this.fp.x.encapBatch(count);
      this.send(this.ipipFd, KIND_SOCK, count, CH_IPIP, tallyOf(t, CH_IPIP), HOST_COUNTER.sendFailed);
      this.send(this.vxlanFd, KIND_SOCK, count, CH_VXLAN, tallyOf(t, CH_VXLAN), HOST_COUNTER.sendFailed);
      this.send(this.tunFd, KIND_TUN, count, CH_TUN, tallyOf(t, CH_TUN), HOST_COUNTER.tunWriteFailed);
      if (count < this.batch) return;
    }
  }

  private fromNetwork(fd: number, vxlan: boolean): void {
    const cap = this.slotSize - this.fp.headroom;
    for (let round = 0; round < 8; round++) {
      const count = this.recv(fd, KIND_SOCK);
      if (count === 0) return;
      this.fp.addCounter(HOST_COUNTER.networkBatches, 1);
      const t = vxlan ? this.fp.x.decapVxlanBatch(count, cap) : this.fp.x.decapIpipBatch(count, cap);
      this.send(this.tunFd, KIND_TUN, count, CH_TUN, tallyOf(t, CH_TUN), HOST_COUNTER.tunWriteFailed);
      if (count < this.batch) return;
    }
  }
}
