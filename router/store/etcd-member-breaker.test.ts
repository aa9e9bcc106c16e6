// Which etcd members a call may go to (MemberBreaker): a failing member is left alone a
// while, then one call tries it while the others wait for the outcome; a call made
// inside that trial (the client signing in again when etcd forgot its token) goes
// through, where it waited for the trial that waited for it.
import { isBrokenCircuitError } from "cockatiel";
import { GRPCUnavailableError } from "etcd3";
import { describe, expect, it } from "vitest";
import { MemberBreaker } from "./etcd.js";

const down = () => Promise.reject(new GRPCUnavailableError("14 UNAVAILABLE: connect ECONNREFUSED"));
const turnedAway = (p: Promise<unknown>) => p.then(() => false, (e) => isBrokenCircuitError(e));

describe("an etcd member that fails", () => {
  it("is left alone after the threshold of failures in a row, until its pause is over; then it is tried and closes on success", async () => {
    let t = 0;
    const b = new MemberBreaker(3, 5000, 30_000, () => t);
    for (let i = 0; i < 3; i++) await expect(b.execute(down)).rejects.toThrow(/ECONNREFUSED/);
    expect(await turnedAway(b.execute(() => "ok"))).toBe(true);
    t = 5001;
    expect(await b.execute(() => "ok")).toBe("ok");
    await expect(b.execute(down)).rejects.toThrow(/ECONNREFUSED/); // one failure after success: not open again
    expect(await b.execute(() => "again")).toBe("again");
  });

  it("calls under way when the member failed, failing later, do not put its pause off", async () => {
    let t = 0;
    const b = new MemberBreaker(1, 5000, 30_000, () => t);
    let fail!: () => void;
    const slow = b.execute(() => new Promise((_, reject) => (fail = () => reject(new GRPCUnavailableError("14 UNAVAILABLE: deadline")))));
    await expect(b.execute(down)).rejects.toThrow(); // open at t = 0
    t = 4000;
    fail();
    await expect(slow).rejects.toThrow();
    t = 5000;
    expect(await b.execute(() => "ok")).toBe("ok");
  });

  it("a failed trial doubles the pause, up to the most; a success brings it back to the first", async () => {
    let t = 0;
    const b = new MemberBreaker(1, 5000, 12_000, () => t);
    await expect(b.execute(down)).rejects.toThrow();
    let at = 0;
    for (const pause of [5000, 10_000, 12_000]) {
      t = at + pause - 1;
      expect(await turnedAway(b.execute(() => "ok"))).toBe(true);
      t = at + pause;
      at = t;
      await expect(b.execute(down)).rejects.toThrow(/ECONNREFUSED/); // the trial, failing
    }
    t = at + 12_000;
    expect(await b.execute(() => "ok")).toBe("ok");
    await expect(b.execute(down)).rejects.toThrow();
    t += 4999;
    expect(await turnedAway(b.execute(() => "ok"))).toBe(true);
    t += 1;
    expect(await b.execute(() => "ok")).toBe("ok");
  });

  it("while one call tries the member, others wait for its outcome: through when it answered, turned away when it failed", async () => {
    let t = 0;
    const b = new MemberBreaker(1, 5000, 30_000, () => t);
    await expect(b.execute(down)).rejects.toThrow();
    t = 6000;
    let release!: (ok: boolean) => void;
    const trial = b.execute(() => new Promise<string>((resolve, reject) => (release = (ok) => (ok ? resolve("trial") : reject(new GRPCUnavailableError("14 UNAVAILABLE"))))));
    const waiting = b.execute(() => "other");
    release(false);
    await expect(trial).rejects.toThrow(/UNAVAILABLE/);
    expect(await turnedAway(waiting)).toBe(true);
    t = 6000 + 10_000;
    const second = b.execute(() => new Promise<string>((resolve) => (release = () => resolve("trial"))));
    const after = b.execute(() => "other");
    release(true);
    expect(await second).toBe("trial");
    expect(await after).toBe("other");
  });

  it("a call made inside the trial (signing in again) goes through instead of waiting for the trial, which waited for it", async () => {
    let t = 0;
    const b = new MemberBreaker(1, 5000, 30_000, () => t);
    await expect(b.execute(down)).rejects.toThrow();
    t = 6000;
    const outer = b.execute(async () => `outer(${await b.execute(() => "inner")})`);
    const settled = await Promise.race([outer, new Promise((r) => setTimeout(() => r("still waiting after 1 s"), 1000))]);
    expect(settled).toBe("outer(inner)");
  });

  it("a callback made inside a trial and run after it ended is a call like any other (turned away while the member is paused)", async () => {
    let t = 0;
    const b = new MemberBreaker(1, 5000, 30_000, () => t);
    await expect(b.execute(down)).rejects.toThrow();
    t = 6000;
    // A timer set inside the trial keeps the trial's context when it fires.
    const later = new Promise<{ call: Promise<unknown> }>((resolve) => {
      void b.execute(() => {
        setTimeout(() => resolve({ call: b.execute(() => "late") }), 20);
        return down();
      }).catch(() => undefined);
    });
    expect(await turnedAway((await later).call)).toBe(true);
  });
});
