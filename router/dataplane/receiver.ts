// The network -> TUN direction: receive a batch from a tunnel socket, decapsulate it
// in wasm, write the result to the TUN. Runs on the main thread, or on the receive
// thread (rx-thread.ts) with a fast path of its own.
import { KIND_SOCK, KIND_TUN, type Native } from "../native/index.js";
import { CH_TUN, type FastPath } from "./fastpath.js";
import { HOST_COUNTER } from "./counters.js";

export class Receiver {
  constructor(
    private readonly n: Native,
    private readonly fp: FastPath,
    private readonly tunFd: number,
    private readonly slotSize: number,
    private readonly batch: number,
    /** Adds the time of each step to a stage_ns_* counter (a clock read per step). */
    private readonly timing: boolean,
    private readonly afterBatch: () => void = () => {},
    /** Errors the network reported about what was sent through a socket (a path MTU, unreachables). */
    private readonly onErrors: (errors: SocketError[]) => void = () => {},
  ) {}

  /** Drains at most a few batches from fd, then yields to the loop. */
  drain(fd: number, vxlan: boolean): void {
    const { n, fp, timing } = this;
    const cap = this.slotSize - fp.headroom;
    for (let round = 0; round < 8; round++) {
      let t0 = timing ? performance.now() : 0;
      const count = n.recvBatch(fd, KIND_SOCK, fp.memory, fp.descIn, fp.slots, this.slotSize, fp.headroom, this.batch);
      if (timing) t0 = stage(fp, HOST_COUNTER.nsNetworkRead, t0);
      // -1: the socket reported an error; woken with nothing to read: maybe only its error
      // queue has something (left there, it keeps the socket readable).
      if (count < 0 || (count === 0 && round === 0)) {
        readSocketErrors(n, fp, fd, this.onErrors);
        if (count < 0) continue;
      }
      if (count <= 0) break;
      fp.addCounter(HOST_COUNTER.networkBatches, 1);
      const outs = vxlan ? fp.x.decapVxlanBatch(count, cap) : fp.x.decapIpipBatch(count, cap);
      if (timing) t0 = stage(fp, HOST_COUNTER.nsDecap, t0);
      sendChannel(n, fp, this.tunFd, KIND_TUN, outs, CH_TUN, HOST_COUNTER.tunWriteFailed);
      if (timing) stage(fp, HOST_COUNTER.nsTunWrite, t0);
      if (count < this.batch) break;
    }
    this.afterBatch();
  }
}

/**
 * One thread's readiness callbacks: each fd's handler runs when epoll finds it readable.
 * With a busy-poll budget, after a handler the thread keeps checking all its fds (poll
 * with no timeout, giving the CPU to anything runnable between checks) for up to
 * budgetNs before going back to epoll, and runs the handler of each that turns
 * readable. Traffic that comes back within the budget (a reply, the next train, the
 * ACK) then costs neither this thread's wakeup nor the sender's wakeup call. At most
 * SESSION_MS in a row, so timers and the control socket keep their turn.
 */
export class Readiness {
  static readonly SESSION_MS = 1;
  private active = false;
  private fds = new Int32Array(0);
  private readonly handlers: Array<() => void> = [];
  private readonly polls: unknown[] = [];

  constructor(
    private readonly n: Native,
    private readonly fp: FastPath,
    private readonly busyPollNs: number,
  ) {}

  /**
   * Runs handle whenever fd is readable (and, busy-polling, when it turns readable soon
   * after another's batch). A TUN: onError runs once if it fails (epoll reports an
   * error: its device was deleted), and it is no longer watched. A tunnel socket
   * (socket: true): the errors the network reports about what was sent wake handle too
   * (it reads them); should the watch end anyway, handle runs once more and the socket
   * is watched again, so receiving never stops for good.
   */
  add(fd: number, handle: () => void, onError?: (status: number) => void, socket = false): void {
    this.fds = Int32Array.from([...this.fds, fd]);
    this.handlers.push(handle);
    const index = this.polls.length;
    const watch = (): unknown =>
      this.n.pollStart(
        fd,
        (status) => {
          if (status < 0) {
            onError?.(status);
            if (!socket || !this.polls.length) return;
            handle();
            this.n.pollStop(this.polls[index]);
            this.polls[index] = watch();
            return;
          }
          handle();
          this.busyPoll();
        },
        socket,
      );
    this.polls.push(watch());
  }

  stop(): void {
    for (const p of this.polls) this.n.pollStop(p);
    this.polls.length = 0;
  }

  private busyPoll(): void {
    if (this.busyPollNs <= 0 || this.active) return;
    this.active = true;
    const until = performance.now() + Readiness.SESSION_MS;
    try {
      while (performance.now() < until) {
        const i = this.n.spinReady(this.fds, this.busyPollNs);
        if (i < 0) {
          this.fp.addCounter(HOST_COUNTER.busyPollMisses, 1);
          return;
        }
        this.fp.addCounter(HOST_COUNTER.busyPollHits, 1);
        this.handlers[i]();
      }
    } finally {
      this.active = false;
    }
  }
}

/** Sends a batch's outputs of one channel on fd; what the kernel did not take is counted. */
/** Sends a channel's outputs; returns how many the kernel did not take. */
export function sendChannel(n: Native, fp: FastPath, fd: number, kind: number, outputs: number, channel: number, failCounter: number, gso = false): number {
  const expected = fp.tally(channel);
  if (expected === 0) return 0;
  const sent = n.sendBatch(fd, kind, fp.memory, fp.descOut, outputs, channel, gso);
  if (sent < expected) fp.addCounter(failCounter, expected - sent);
  return expected - sent;
}

/** An error a socket's queue held: [destination (host order), path MTU or 0, errno]. */
export type SocketError = [number, number, number];

/** Drains a socket's error queue, counts what it held, and hands it to onErrors (if anything). */
export function readSocketErrors(n: Native, fp: FastPath, fd: number, onErrors: (errors: SocketError[]) => void): void {
  const errors = n.socketErrors(fd);
  if (!errors.length) return;
  fp.addCounter(HOST_COUNTER.networkErrors, errors.length);
  onErrors(errors);
}

/** Adds the time since `since` (performance.now()) to a stage counter; returns now. */
export function stage(fp: FastPath, counter: number, since: number): number {
  const now = performance.now();
  fp.addCounter(counter, Math.round((now - since) * 1e6));
  return now;
}
