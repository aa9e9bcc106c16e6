// The receive thread: the network -> TUN direction on a core of its own. It has its
// own fast path (configuration and known nodes copied from the main thread, which
// sends node-set changes) and publishes its counters into shared memory.
import { parentPort, workerData } from "node:worker_threads";
import { native } from "../native/index.js";
import { FastPath, type FastPathConfig } from "./fastpath.js";
import { Readiness, Receiver, type SocketError } from "./receiver.js";

export interface RxThreadInit {
  tunFd: number;
  /** [fd, isVxlan] for each socket to receive from. */
  sockets: Array<[number, boolean]>;
  slotSize: number;
  batch: number;
  config: FastPathConfig;
  offloadBits: number;
  nodes: number[];
  counters: SharedArrayBuffer;
  timing: boolean;
  busyPollNs: number;
}

export type RxThreadMessage = { nodes: number[] } | { stop: true };
/** What the receive thread tells the main thread: errors its sockets reported (path MTUs). */
export type RxThreadReport = { errors: SocketError[] };

const init = workerData as RxThreadInit;
const n = native();
const fp = new FastPath();
fp.configure(init.config);
fp.x.setOffloads(init.offloadBits);
fp.setNodes(init.nodes);
fp.useSharedCounters(init.counters);
// Path MTUs are the main thread's (it owns the routes): errors go there.
const rx = new Receiver(n, fp, init.tunFd, init.slotSize, init.batch, init.timing, () => fp.publishCounters(init.counters), (errors) => parentPort!.postMessage({ errors } satisfies RxThreadReport));
// This thread busy-polls its own fds (the sockets); the main thread polls the TUN.
const ready = new Readiness(n, fp, init.busyPollNs);
for (const [fd, vxlan] of init.sockets) ready.add(fd, () => rx.drain(fd, vxlan), undefined, true);

parentPort!.on("message", (m: RxThreadMessage) => {
  if ("nodes" in m) fp.setNodes(m.nodes);
  else if ("stop" in m) {
    ready.stop();
    fp.publishCounters(init.counters);
    parentPort!.close();
  }
});
