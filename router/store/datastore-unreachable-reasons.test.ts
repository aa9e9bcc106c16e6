// What a node and the CLI say when etcd does not answer, from the client's errors.
import { describe, expect, it } from "vitest";
import { unreachable } from "./store.js";

describe("why the datastore did not answer", () => {
  it("a call past its deadline (packets dropped: a partition, a firewall) is no answer within 5 s", () => {
    expect(unreachable(Object.assign(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 5.005s,name resolution: 0.001s,Waiting for LB pick"), { code: 4 }))).toBe("no answer within 5 s");
    expect(unreachable(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 5.002s"))).toBe("no answer within 5 s");
  });

  it("a refused connection names the client's last error; a paused client says so; anything else is not an outage", () => {
    expect(unreachable(Object.assign(new Error("14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.30.0.1:2379 (2026-11-27T14:00:00.000Z)"), { code: 14 }))).toBe("connect ECONNREFUSED 10.30.0.1:2379");
    expect(unreachable({ isBrokenCircuitError: true })).toBe("the client is pausing after repeated failures");
    expect(unreachable(new Error("mvcc: required revision has been compacted"))).toBeUndefined();
  });
});
