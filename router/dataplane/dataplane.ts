// Owns the packet fds and moves batches between them and the fast path:
// native read into slots -> one wasm call -> native send per output channel.
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { native, projectRoot, KIND_SOCK, KIND_TUN, type Native } from "../native/index.js";
import { isTunTap, linkInfo } from "../native/iproute.js";
import { FastPath, CH_IPIP, CH_TUN, CH_VXLAN, OFFLOAD_GRO, OFFLOAD_VNET } from "./fastpath.js";
import { HOST_COUNTER } from "./counters.js";
import { Readiness, Receiver, readSocketErrors, sendChannel, stage, type SocketError } from "./receiver.js";
import type { RxThreadInit, RxThreadMessage, RxThreadReport } from "./rx-thread.js";
import { formatIPv4 } from "./addr.js";

export const IPPROTO_IPIP = 4;
export const VXLAN_PORT = 4789;

// linux/if_tun.h
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
/** The TUN offloads weft asks for (checksum and TCP segmentation). */
export const TSO_OFFLOAD = TUN_F_CSUM | TUN_F_TSO4;

/** Each offload can be turned off (kernels with offload bugs exist). */
export interface Offloads {
  /** TUN with virtio-net headers and TSO: read 64 KiB TCP super-packets, split in wasm. */
  tso: boolean;
  /** Coalesce received TCP segments into super-packets written to the TUN. */
  gro: boolean;
  /** VXLAN send with UDP_SEGMENT: one sendmsg per train of equal-size datagrams. */
  udpGSO: boolean;
  /** VXLAN receive with UDP_GRO: several datagrams per receive. */
  udpGRO: boolean;
}

export const ALL_OFFLOADS: Offloads = { tso: true, gro: true, udpGSO: true, udpGRO: true };
export const NO_OFFLOADS: Offloads = { tso: false, gro: false, udpGSO: false, udpGRO: false };

export interface DataplaneOptions {
  tunName: string;
  /** Largest underlay packet; slots are sized for it. */
  underlayMTU: number;
  /** Address the VXLAN socket binds (the node's underlay address). */
  bindAddress: string;
  vxlanPort?: number;
  /** VXLAN source ports, one socket each, chosen per flow by hash (1-8; default 4). */
  vxlanSourcePorts?: number;
  /** Packets per receive batch (default 64; at most what the slots hold). */
  batch?: number;
  offloads?: Offloads;
  /**
   * Receive (network -> TUN) on a thread of its own, so each direction has a core.
   * Default: on with 4 or more CPUs (WEFT_RX_THREAD=0|1 sets it). On 2 shared CPUs
   * `weft bench` measured it slower (cross-thread wakeups cost more than the core gives).
   */
  rxThread?: boolean;
  /**
   * After each batch, keep polling for this long before sleeping in epoll (default 0 =
   * off, at most 1000; WEFT_BUSY_POLL_US sets it): traffic that comes back within it costs no thread
   * wakeup. The CPU is yielded to anything runnable between checks. Off by default:
   * on 2 shared vCPUs `weft bench` measured it both helping and hurting latency.
   */
  busyPollMicros?: number;
  /** Per-stage timing (stage_ns_* counters); costs a clock read per step. */
  stageTiming?: boolean;
  log: Logger;
}

export class Dataplane {
  private readonly n: Native = native();
  private tunFd = -1;
  private ipipFd = -1;
  private vxlanFd = -1;
  /** Send sockets by source port; the first is vxlanFd (bound to the VXLAN port). */
  private vxlanFds: number[] = [];
  /** This thread's readiness callbacks (and busy-poll). */
  private ready?: Readiness;
  private receiver?: Receiver;
  private busyPollNs = 0;
  /** How the data path runs, as the node's status and start-up log show it. */
  settings(): { offloads: Offloads; receiveThread: boolean; busyPollMicros: number } {
    return { offloads: this.active, receiveThread: this.threaded, busyPollMicros: this.busyPollNs / 1000 };
  }
  private worker?: Worker;
  /** Whether the receive direction runs on its own thread. */
  threaded = false;
  private slotSize = 0;
  private batch = 0;
  private readonly timing: boolean;
  /** What the kernel accepted (asked-for offloads it refused are off). */
  active: Offloads = { ...NO_OFFLOADS };
  /** Called when the TUN fails under us (someone deleted the device). */
  onTunnelLost?: () => void;
  /** When each path MTU below the uplink's was last reported, by node (host order). */
  /** When each smaller path MTU was last reported (performance.now(): a step of the wall clock moves no expiry). */
  private readonly pathMtuHeard = new Map<number, number>();
  private pathMtuTimer?: NodeJS.Timeout;
  /** How long a path MTU holds, as the kernel keeps one (net.ipv4.route.mtu_expires). */
  static readonly PATH_MTU_MS = 600_000;

  /** Path MTUs below the uplink's, by node address (weft node status). */
  pathMtus(): Record<string, number> {
    return Object.fromEntries(this.fp.pathMtuList().map((p) => [formatIPv4(p.nextHop), p.mtu]));
  }

  /**
   * Errors the network reported about what we sent. An ICMP fragmentation-needed (or
   * the kernel refusing a datagram over a path MTU it learned from one) gives the MTU
   * toward that node: routes through it then answer pods with fragmentation-needed at
   * that MTU less the encapsulation, so their TCP sends smaller segments, as a kernel
   * tunnel's path MTU discovery does. Without it a router with a smaller MTU on the way
   * drops every full-size packet for good.
   */
  private learnFromErrors(errors: SocketError[]): void {
    const uplink = this.fp.config?.underlayMTU ?? 0;
    for (const [addr, reported] of errors) {
      if (!addr || !reported || reported >= uplink) continue;
      // The kernel's floor (net.ipv4.route.min_pmtu): it never goes below it either.
      const mtu = Math.max(reported, 552);
      this.pathMtuHeard.set(addr, performance.now());
      if (this.fp.pathMtu(addr) === mtu) continue;
      this.fp.setPathMtu(addr, mtu);
      this.opts.log.warn({ node: formatIPv4(addr), pathMTU: mtu, uplinkMTU: uplink }, "a router toward this node takes smaller packets than the uplink (ICMP fragmentation needed): pods get fragmentation-needed at that MTU less the encapsulation");
    }
    if (this.pathMtuHeard.size && !this.pathMtuTimer) {
      this.pathMtuTimer = setInterval(() => this.expirePathMtus(), 30_000);
      this.pathMtuTimer.unref();
    }
  }

  private expirePathMtus(now = performance.now()): void {
    for (const [addr, heard] of this.pathMtuHeard) {
      if (now - heard < Dataplane.PATH_MTU_MS) continue;
      this.pathMtuHeard.delete(addr);
      this.fp.setPathMtu(addr, 0);
      this.opts.log.info({ node: formatIPv4(addr) }, "no word of a smaller path MTU toward this node for 10 minutes: back to the uplink's, as the kernel does (it is learned again if still smaller)");
    }
    if (!this.pathMtuHeard.size) {
      clearInterval(this.pathMtuTimer);
      this.pathMtuTimer = undefined;
    }
  }

  /** Reads a socket's error queue after a send it refused part of. */
  private sendErrors(fd: number): void {
    readSocketErrors(this.n, this.fp, fd, (errors) => this.learnFromErrors(errors));
  }

  constructor(
    readonly fp: FastPath,
    private readonly opts: DataplaneOptions,
  ) {
    this.timing = opts.stageTiming ?? false;
  }

  /** Opens (or adopts) the TUN and the sockets and starts forwarding. */
  start(): void {
    const { tunName, bindAddress, vxlanPort = VXLAN_PORT, log } = this.opts;
    const want = this.opts.offloads ?? ALL_OFFLOADS;
    // virtio headers are needed for either TUN offload.
    const vnet = want.tso || want.gro;
    try {
      this.tunFd = this.n.tunOpen(tunName, vnet);
    } catch (err) {
      // EBUSY: another process holds the device (single-queue TUN takes one owner).
      if ((err as { errno?: number }).errno === 16) {
        throw new Error(`${tunName} is held by another process (is a weft node already running on this host? "weft node status" shows it; a second node needs its own tunnelDevice)`);
      }
      // EINVAL: a device of that name exists but is no TUN (a bridge, a TAP, ...).
      if ((err as { errno?: number }).errno === 22 && linkInfo(tunName)) {
        const what = isTunTap(tunName) ? "a TUN/TAP device weft cannot attach to (a TAP, or other flags)" : "not a TUN device";
        throw new Error(`${tunName} exists and is ${what}; remove it (ip link del ${tunName}) or give weft another tunnelDevice`);
      }
      throw err;
    }
    if (want.tso) {
      this.active.tso = this.n.tunSetOffload(this.tunFd, TSO_OFFLOAD);
      if (!this.active.tso) log.warn("the kernel refused TUN TSO offload: reading one packet per system call");
    } else if (vnet) {
      this.n.tunSetOffload(this.tunFd, 0);
    }
    this.active.gro = want.gro;
    this.ipipFd = this.n.rawOpen(IPPROTO_IPIP);
    try {
      this.vxlanFd = this.n.udpOpen(bindAddress, vxlanPort);
    } catch (err) {
      this.n.close(this.tunFd);
      this.n.close(this.ipipFd);
      throw new Error(`cannot bind VXLAN port ${bindAddress}:${vxlanPort} (${(err as Error).message}); is another weft node, or a kernel vxlan device, using it?`);
    }
    // Further source ports: ephemeral ports of the same address, as the kernel's
    // vxlan device picks source ports from the local port range.
    const ports = Math.max(1, Math.min(this.opts.vxlanSourcePorts ?? 4, this.fp.x.layoutVxlanSocketsMax()));
    this.vxlanFds = [this.vxlanFd];
    for (let i = 1; i < ports; i++) this.vxlanFds.push(this.n.udpOpen(bindAddress, 0));
    this.fp.x.setVxlanSockets(ports);
    if (want.udpGRO) {
      this.active.udpGRO = this.vxlanFds.every((fd) => this.n.udpSetGro(fd, true));
      if (!this.active.udpGRO) {
        for (const fd of this.vxlanFds) this.n.udpSetGro(fd, false);
        log.warn("the kernel refused UDP_GRO: receiving one VXLAN datagram per slot");
      }
    }
    if (want.udpGSO) {
      this.active.udpGSO = this.n.udpGsoSupported(this.vxlanFd);
      if (!this.active.udpGSO) log.warn("the kernel has no UDP_SEGMENT: sending one VXLAN datagram per message");
    }
    const offloadBits = (vnet ? OFFLOAD_VNET : 0) | (this.active.gro && vnet ? OFFLOAD_GRO : 0);
    this.fp.x.setOffloads(offloadBits);
    // 64 KiB slots, for super-packets: TSO reads, UDP GRO receives, and IPIP packets this
    // host's NIC merged (GRO) before the raw socket saw them, whatever the TUN offloads.
    let size = 65536 + 256;
    while (size < this.opts.underlayMTU + this.fp.headroom + 64) size *= 2;
    this.slotSize = size;
    this.batch = Math.min(this.opts.batch ?? 64, this.fp.maxIn, Math.floor(this.fp.x.layoutSlotsBytes() / size));
    this.busyPollNs = Math.round(Math.min(Math.max(this.opts.busyPollMicros ?? 0, 0), 1000) * 1000);
    this.ready = new Readiness(this.n, this.fp, this.busyPollNs);
    this.ready.add(this.tunFd, () => this.fromTun(), () => this.onTunnelLost?.());
    this.receiver = new Receiver(this.n, this.fp, this.tunFd, this.slotSize, this.batch, this.timing, undefined, (errors) => this.learnFromErrors(errors));
    const threaded = this.opts.rxThread ?? os.availableParallelism() >= 4;
    if (threaded) this.startRxThread(offloadBits);
    else this.receiveHere();
  }

  // Peers send to the VXLAN port; the other VXLAN sockets are received from too, so
  // nothing sent to them queues up unread.
  private receiveSockets(): Array<[number, boolean]> {
    return [[this.ipipFd, false], ...this.vxlanFds.map((fd): [number, boolean] => [fd, true])];
  }

  private receiveHere(): void {
    const rx = this.receiver!;
    const lost = (status: number) => this.opts.log.warn({ status }, "epoll stopped watching a tunnel socket: watching it again");
    for (const [fd, vxlan] of this.receiveSockets()) this.ready!.add(fd, () => rx.drain(fd, vxlan), lost, true);
  }

  private startRxThread(offloadBits: number): void {
    const { log } = this.opts;
    const counters = this.fp.sharedCounters();
    const init: RxThreadInit = { tunFd: this.tunFd, sockets: this.receiveSockets(), slotSize: this.slotSize, batch: this.batch, config: this.fp.config!, offloadBits, nodes: this.fp.nodeList, counters, timing: this.timing, busyPollNs: this.busyPollNs };
    const worker = new Worker(path.join(projectRoot(), "dist", "router", "dataplane", "rx-thread.js"), { workerData: init, name: "weft-rx" });
    this.worker = worker;
    this.threaded = true;
    this.fp.addPeerCounters(counters);
    this.fp.onNodes = (nodes) => worker.postMessage({ nodes } satisfies RxThreadMessage);
    worker.on("message", (m: RxThreadReport) => this.learnFromErrors(m.errors));
    worker.on("error", (err) => {
      // The thread died: receive on the main thread instead; forwarding goes on.
      log.error({ err }, "the receive thread failed; receiving on the main thread");
      this.fp.onNodes = undefined;
      this.worker = undefined;
      this.threaded = false;
      if (this.tunFd >= 0) this.receiveHere();
    });
  }

  /** Stops forwarding; the fds close once the receive thread (if any) has let go of them. */
  stop(): Promise<void> {
    this.ready?.stop();
    clearInterval(this.pathMtuTimer);
    const fds = [this.tunFd, this.ipipFd, ...this.vxlanFds].filter((fd) => fd >= 0);
    this.tunFd = this.ipipFd = this.vxlanFd = -1;
    this.vxlanFds = [];
    const close = () => {
      for (const fd of fds) this.n.close(fd);
    };
    const worker = this.worker;
    this.worker = undefined;
    this.fp.onNodes = undefined;
    if (!worker) {
      close();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate(), 2000);
      worker.once("exit", () => {
        clearTimeout(timer);
        close();
        resolve();
      });
      worker.postMessage({ stop: true } satisfies RxThreadMessage);
    });
  }

  // A readiness callback drains at most a few batches, then yields to the loop so
  // the other directions and the control socket get their turn. With stage timing
  // on, the time of each step is added to a stage_ns_* counter.
  private fromTun(): void {
    // A TSO super-packet becomes up to 45 segments: keep a batch within the outputs.
    const max = this.active.tso ? Math.min(this.batch, 64) : this.batch;
    const timing = this.timing;
    const fp = this.fp;
    for (let round = 0; round < 8; round++) {
      let t0 = timing ? performance.now() : 0;
      const count = this.n.recvBatch(this.tunFd, KIND_TUN, fp.memory, fp.descIn, fp.slots, this.slotSize, fp.headroom, max);
      if (timing) t0 = stage(fp, HOST_COUNTER.nsTunRead, t0);
      if (count === 0) return;
      fp.addCounter(HOST_COUNTER.tunBatches, 1);
      const outs = fp.x.encapBatch(count);
      if (timing) t0 = stage(fp, HOST_COUNTER.nsEncap, t0);
      if (sendChannel(this.n, fp, this.ipipFd, KIND_SOCK, outs, CH_IPIP, HOST_COUNTER.sendFailed)) this.sendErrors(this.ipipFd);
      for (let k = 0; k < this.vxlanFds.length; k++) {
        if (sendChannel(this.n, fp, this.vxlanFds[k], KIND_SOCK, outs, CH_VXLAN + k, HOST_COUNTER.sendFailed, this.active.udpGSO)) this.sendErrors(this.vxlanFds[k]);
      }
      if (timing) t0 = stage(fp, HOST_COUNTER.nsNetworkSend, t0);
      sendChannel(this.n, fp, this.tunFd, KIND_TUN, outs, CH_TUN, HOST_COUNTER.tunWriteFailed);
      if (timing) stage(fp, HOST_COUNTER.nsTunWrite, t0);
      if (count < max) return;
    }
  }
}
