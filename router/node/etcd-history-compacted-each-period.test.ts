// etcd keeps every revision until compacted and refuses every write at its space quota;
// Calico's kube-controllers compacts it every 10 minutes. Each weft node does: to the
// revision it had read one period before, so a period of history stays.
import { afterEach, describe, expect, it, vi } from "vitest";
import { pino } from "pino";
import { compactHistory } from "./cluster-node.js";
import { compactionPeriod } from "../cli/args.js";

function setup(answers: Array<boolean | Error> = []) {
  const compacted: number[] = [];
  const lines: Array<{ level: number; msg: string; revision?: number }> = [];
  const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const store = {
    description: "etcd://10.30.0.1:2379",
    compact: async (rev: number) => {
      compacted.push(rev);
      const a = answers.shift() ?? true;
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return { store, compacted, lines, log };
}

describe("etcd's history, compacted each period", () => {
  afterEach(() => vi.useRealTimers());
  const PERIOD = 600;
  const tick = async () => {
    await vi.advanceTimersByTimeAsync(PERIOD * 1100);
  };

  it("compacts to the revision read one period before, every period; says so once, then at debug", async () => {
    vi.useFakeTimers();
    const { store, compacted, lines, log } = setup();
    let revision = 100;
    const timer = compactHistory(store, PERIOD, () => revision, log);
    revision = 250;
    await tick();
    revision = 400;
    await tick();
    expect(compacted).toEqual([100, 250]);
    expect(lines.filter((l) => /compacted etcd's history/.test(l.msg)).map((l) => [l.level, l.revision])).toEqual([[30, 100], [20, 250]]);
    clearInterval(timer);
  });

  it("asks nothing while the datastore does not answer (revision 0), and says a failure without stopping", async () => {
    vi.useFakeTimers();
    const { store, compacted, lines, log } = setup([new Error("14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.30.0.1:2379")]);
    let revision = 0;
    const timer = compactHistory(store, PERIOD, () => revision, log);
    revision = 300;
    await tick();
    expect(compacted).toEqual([]);
    await tick();
    revision = 500;
    await tick();
    expect(compacted).toEqual([300, 300]);
    expect(lines.find((l) => l.level === 40)?.msg).toMatch(/could not compact etcd's history; trying again next period/);
    clearInterval(timer);
  });

  it("a revision another node compacted already is no news", async () => {
    vi.useFakeTimers();
    const { store, lines, log } = setup([false]);
    const timer = compactHistory(store, PERIOD, () => 100, log);
    await tick();
    expect(lines).toEqual([]);
    clearInterval(timer);
  });

  it("does nothing for a datastore without history to compact (SQLite), or with the period 0", () => {
    const { log } = setup();
    expect(compactHistory({ description: "sqlite:/var/lib/weft/weft.db" }, PERIOD, () => 1, log)).toBeUndefined();
    expect(compactHistory(setup().store, 0, () => 1, log)).toBeUndefined();
  });

  it("takes Calico's COMPACTION_PERIOD: a duration, or 0 for never; anything else is named", () => {
    expect(compactionPeriod("10m")).toBe(600);
    expect(compactionPeriod("1h")).toBe(3600);
    expect(compactionPeriod("0")).toBe(0);
    expect(() => compactionPeriod("ten minutes")).toThrow('--compaction-period (or COMPACTION_PERIOD) must be a duration such as 10m, 1h or 90s, or 0 for never, not "ten minutes"');
    expect(() => compactionPeriod("100ms")).toThrow(/must be a duration/);
  });
});
