// etcd v3 as the datastore, for clusters of many machines.
import { AsyncLocalStorage } from "node:async_hooks";
import { BrokenCircuitError, type IDefaultPolicyContext, type IPolicy } from "cockatiel";
import { Etcd3, isRecoverableError, type IKeyValue, type Watcher } from "etcd3";
import { CALL_DEADLINE_MS, ConflictError, misconfigured, NotFoundError, unreachable, type Datastore, type EtcdTLS, type KV, type Op, type Watch, type WatchEvent } from "./store.js";

// grpc-js gives TLS the server's IP address as its name when etcd is addressed by IP,
// and Node warns about that on stderr on each connection (DEP0123): keep that one out
// of the command's output; every other warning still prints.
const warned = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (w: Error & { code?: string }) => {
  if (w.code !== "DEP0123") for (const l of warned) l(w);
});

/** A watch's connection is pinged after this long without traffic; no answer in the timeout closes it (Calico's client: 30 s and 10 s). */
const KEEPALIVE_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5000;
/** Signing in to one member waits this long before the next is asked (a sign-in, its connection included, took 70-120 ms here). */
export const SIGN_IN_DEADLINE_MS = 2000;

/**
 * Which etcd members a call may go to: after `threshold` failures in a row a member is
 * left alone for a while (doubling from `initialMs` to `maxMs` while it keeps failing),
 * then one call tries it, and calls meanwhile wait for that trial's outcome, as with
 * cockatiel's circuit breaker, which this replaces for one reason: the etcd client signs
 * in again *inside* a call when etcd no longer knows its token (etcd forgets them all
 * when it restarts, with authentication on), so a trial that met that made a call that
 * waited for the trial, which waited for it: every call to the member then hung for
 * good. Here a call made inside the trial is part of it, and goes through.
 */
export class MemberBreaker {
  private failures = 0;
  private openedAt = 0;
  private backoffMs: number;
  private trial?: { done: Promise<unknown> };
  // Which trial a call is made inside of: a call inside the running one goes through.
  // (Callbacks made inside a trial keep its mark after it ends: then it no longer counts.)
  private readonly inTrial = new AsyncLocalStorage<{ done: Promise<unknown> }>();
  constructor(
    private readonly threshold: number,
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.backoffMs = initialMs;
  }

  async execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T): Promise<T> {
    for (;;) {
      if (this.failures < this.threshold || (this.trial && this.inTrial.getStore() === this.trial)) return this.call(fn, false);
      if (this.trial) {
        await this.trial.done.catch(() => undefined);
        continue;
      }
      if (this.now() - this.openedAt < this.backoffMs) throw new BrokenCircuitError();
      const trial = { done: Promise.resolve() as Promise<unknown> };
      this.trial = trial;
      try {
        const done = this.inTrial.run(trial, () => this.call(fn, true));
        trial.done = done;
        return await done;
      } finally {
        this.trial = undefined;
      }
    }
  }

  private async call<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, trial: boolean): Promise<T> {
    try {
      const result = await fn({ signal: new AbortController().signal });
      this.failures = 0;
      this.backoffMs = this.initialMs;
      return result;
    } catch (err) {
      if (isRecoverableError(err as Error)) {
        this.failures += 1;
        // The pause starts when the member fails its threshold or a trial; calls that
        // were under way then and fail later do not put it off.
        if (trial) this.backoffMs = Math.min(this.backoffMs * 2, this.maxMs);
        if (trial || this.failures === this.threshold) this.openedAt = this.now();
      }
      throw err;
    }
  }
}

const toKV = (kv: IKeyValue): KV => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision) });

/** The certificate files are read again at most this often, when calls fail. */
const TLS_RECHECK_MS = 1000;

export class EtcdStore implements Datastore {
  private client: Etcd3;
  private signingIn: boolean;
  notify?: (message: string, fields: Record<string, unknown>) => void;
  private tlsCheckedAt = 0;
  /** The watches under way, told to start again when the client is made anew. */
  private readonly watches = new Set<(err: Error) => void>();
  private constructor(
    // A client that signs in with the user (true) or not (false), with these TLS files' contents.
    private readonly make: (signIn: boolean, tls: EtcdTLS | undefined) => Etcd3,
    private readonly hasUser: boolean,
    readonly description: string,
    private tls?: { now: EtcdTLS; again: () => EtcdTLS; files: string[] },
  ) {
    this.signingIn = hasUser;
    this.client = make(hasUser, tls?.now);
  }

  /**
   * etcd's certificates are renewed on disk under a running node (cert-manager, a
   * script before they expire); the connection made with the old ones lasts until it
   * breaks, and then only the new ones are accepted. When a call fails for want of a
   * connection, the files are read again (at most once a second), and if they changed
   * the client is made anew with them (as etcd's own Go client, which Calico uses, reads
   * its client certificate at each connection). A pair read halfway through its renewal
   * (a certificate without its key yet) is tried again at the next failure.
   */
  private renewTLS(used: Etcd3, err: unknown): boolean {
    if (!this.tls || this.client !== used || Date.now() - this.tlsCheckedAt < TLS_RECHECK_MS) return false;
    if (!unreachable(err) && !misconfigured(err)?.startsWith("TLS")) return false;
    this.tlsCheckedAt = Date.now();
    let next: EtcdTLS;
    let client: Etcd3;
    try {
      next = this.tls.again();
      const same = (a?: Buffer, b?: Buffer) => (a && b ? a.equals(b) : a === b);
      if ((["ca", "cert", "key"] as const).every((k) => same(next[k], this.tls!.now[k]))) return false;
      client = this.make(this.signingIn, next);
    } catch {
      return false;
    }
    this.tls.now = next;
    this.client = client;
    used.close();
    this.notify?.("etcd's certificate files changed: connecting with the new ones", { files: this.tls.files });
    for (const restart of [...this.watches]) restart(new Error("etcd watch ended: the client connects anew with renewed certificates"));
    return true;
  }

  /**
   * Runs a call. With a user, it follows etcd's authentication as Calico's client does:
   * etcd with it off refuses a sign-in, and the client goes on without one (Calico's RBAC
   * guide gives the clients their users before it turns authentication on); once it is
   * on again, etcd asks for a user, and the client signs in.
   */
  private async call<T>(f: (client: Etcd3) => Promise<T>): Promise<T> {
    const used = this.client;
    const signingIn = this.signingIn;
    try {
      return await f(used);
    } catch (err) {
      if (this.renewTLS(used, err)) return f(this.client);
      const message = (err as Error).message ?? "";
      const follow = this.hasUser && (signingIn ? /authentication is not enabled/.test(message) : /user name is empty/.test(message));
      if (!follow) throw err;
      // Calls under way at once all fail so: the first switches, the others use its client.
      if (this.client === used) {
        this.signingIn = !signingIn;
        this.client = this.make(this.signingIn, this.tls?.now);
        used.close();
      }
      return f(this.client);
    }
  }

  /**
   * tls: etcd over TLS (etcds://), with a CA to trust and a client certificate if given.
   * user: an etcd user, for etcd with authentication on; the client asks for a token
   * with it and asks again when etcd says a token is no longer valid.
   */
  static async open(hosts: string[], tls?: { first: EtcdTLS; again: () => EtcdTLS; files: string[] }, user?: { username: string; password: string }): Promise<EtcdStore> {
    // No CA file: the system's roots (an https:// host with no credentials gets them).
    const credentials = (t: EtcdTLS | undefined) => (t && (t.ca || t.cert) ? ({ rootCertificate: t.ca, certChain: t.cert, privateKey: t.key } as { rootCertificate: Buffer }) : undefined);
    // The client signs in to the members in the order given (each call then picks one at
    // random): in a random order, a member cut off is not the first asked by every
    // process, and each is given less time than a call, so that a command or weft-cni,
    // which sign in each time they run, paid 5 to 10 s with the first member cut off.
    const order = [...hosts].sort(() => Math.random() - 0.5);
    const make = (signIn: boolean, t: EtcdTLS | undefined) => new Etcd3({
      hosts: order.map((h) => `${tls ? "https" : "http"}://${h}`),
      credentials: credentials(t),
      ...(user && signIn ? { auth: { ...user, callOptions: () => ({ deadline: Date.now() + SIGN_IN_DEADLINE_MS }) } } : {}),
      dialTimeout: 3000,
      // Every call but a watch has a deadline: a partitioned etcd (packets dropped, no
      // refusal) otherwise held a read for good, and with it a node's syncs and a CLI
      // command (TCP gives up after about 15 minutes).
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
      // A watch has no deadline: keepalive pings on its connection find a partition.
      grpcOptions: { "grpc.keepalive_time_ms": KEEPALIVE_MS, "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS },
      // Several members: the client picks one at random per call, and a call to a member
      // cut off waits out the deadline before another is tried. After one such failure
      // the member is left alone (5 s, doubling to 30 s while it keeps failing), so it
      // costs a process one call, not one call in three. One member: left alone 5 s
      // after three failures in a row, as the client's own default.
      faultHandling: { host: () => (hosts.length > 1 ? new MemberBreaker(1, 5000, 30_000) : new MemberBreaker(3, 5000, 5000)) as unknown as IPolicy<IDefaultPolicyContext> },
    });
    return new EtcdStore(make, user !== undefined, `${tls ? "etcds" : "etcd"}://${hosts.join(",")}`, tls && { now: tls.first, again: tls.again, files: tls.files });
  }

  async get(key: string): Promise<KV | undefined> {
    const res = await this.call((c) => c.get(key).exec());
    return res.kvs[0] && toKV(res.kvs[0]);
  }

  async list(prefix: string): Promise<{ items: KV[]; revision: number }> {
    const res = await this.call((c) => c.getAll().prefix(prefix).exec());
    return { items: res.kvs.map(toKV).sort((a, b) => (a.key < b.key ? -1 : 1)), revision: Number(res.header.revision) };
  }

  async txn(ops: Op[]): Promise<number> {
    const res = await this.call((ns) => {
      // Always true: a transaction needs one comparison even when nothing is compared.
      let t = ns.if(ops[0].key, "Version", ">", -1);
      const compares = ops.map((o) => {
        if (o.op === "create") return [o.key, "Create", "==", 0] as const;
        if (o.modRevision !== undefined) return [o.key, "Mod", "==", o.modRevision] as const;
        return undefined;
      });
      let first = true;
      for (const c of compares) {
        if (!c) continue;
        t = first ? ns.if(c[0], c[1], c[2], c[3]) : t.and(c[0], c[1], c[2], c[3]);
        first = false;
      }
      return t.then(...ops.map((o) => (o.op === "delete" ? ns.delete().key(o.key) : ns.put(o.key).value(o.value)))).commit();
    });
    if (!res.succeeded) {
      // Find which compare failed, for the message.
      for (const o of ops) {
        const cur = await this.get(o.key);
        if (o.op === "create" && cur) throw new ConflictError(o.key, `${o.key} already exists`);
        if (o.op !== "create" && o.modRevision !== undefined) {
          if (!cur) throw new NotFoundError(o.key);
          if (cur.modRevision !== o.modRevision) throw new ConflictError(o.key);
        }
      }
      throw new ConflictError(ops[0].key);
    }
    return Number(res.header.revision);
  }

  watch(prefix: string, afterRevision: number, onEvents: (events: WatchEvent[]) => void, onError: (err: Error) => void): Watch {
    let watcher: Watcher | undefined;
    let stopped = false;
    const restart = (err: Error) => {
      this.watches.delete(restart);
      stopped = true;
      watcher?.cancel().catch(() => undefined);
      onError(err);
    };
    this.watches.add(restart);
    this.client
      .watch()
      .prefix(prefix)
      .startRevision(String(afterRevision + 1))
      .create()
      .then((w) => {
        if (stopped) return void w.cancel().catch(() => undefined);
        watcher = w;
        w.on("data", (res) => {
          const events = res.events.map((e): WatchEvent => ({ type: e.type === "Delete" ? "delete" : "put", key: e.kv.key.toString(), value: e.type === "Delete" ? undefined : e.kv.value.toString(), revision: Number(e.kv.mod_revision) }));
          if (events.length) onEvents(events);
        });
        // The client reconnects by itself; tell the caller so it can say so and resync.
        w.on("disconnected", () => stopped || onError(new Error("etcd watch disconnected")));
        // etcd cancels a watch whose start revision it compacted away (with no reason given).
        w.on("error", (err) => stopped || onError(/^Watcher canceled/.test((err as Error).message) ? new Error(`watch fell behind etcd's history (compacted): ${(err as Error).message}`) : (err as Error)));
      })
      .catch((err) => stopped || onError(err as Error));
    return {
      stop: () => {
        this.watches.delete(restart);
        stopped = true;
        watcher?.cancel().catch(() => undefined);
      },
    };
  }

  async compact(revision: number): Promise<boolean> {
    try {
      await this.call((c) => c.kv.compact({ revision: String(revision) }));
      return true;
    } catch (err) {
      if (/required revision has been compacted/.test((err as Error).message)) return false;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
