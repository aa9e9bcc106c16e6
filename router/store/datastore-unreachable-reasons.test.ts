// What a node and the CLI say when etcd does not answer, or refuses what it is given,
// from the client's errors.
import { describe, expect, it } from "vitest";
import { misconfigured, openDatastore, unreachable } from "./store.js";

describe("why the datastore did not answer", () => {
  it("a call past its deadline (packets dropped: a partition, a firewall) is no answer within 5 s", () => {
    expect(unreachable(Object.assign(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 5.005s,name resolution: 0.001s,Waiting for LB pick"), { code: 4 }))).toBe("no answer within 5 s");
    expect(unreachable(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded after 5.002s"))).toBe("no answer within 5 s");
  });

  it("a refused connection names the client's last error; a paused client says so; anything else is not an outage", () => {
    expect(unreachable(Object.assign(new Error("14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.30.0.1:2379 (2026-11-27T14:00:00.000Z)"), { code: 14 }))).toBe("connect ECONNREFUSED 10.30.0.1:2379");
    expect(unreachable({ isBrokenCircuitError: true })).toBe("the client is pausing after repeated failures");
    // It said "no connection" for a member's host name that does not resolve.
    expect(unreachable(Object.assign(new Error("14 UNAVAILABLE: Name resolution failed for target dns:etcd-a.example.invalid:2379"), { code: 14 }))).toBe("the name etcd-a.example.invalid does not resolve");
    expect(unreachable(new Error("mvcc: required revision has been compacted"))).toBeUndefined();
  });
});

describe("what configuration must fix (waiting does not)", () => {
  const grpc = (code: number, text: string) => Object.assign(new Error(`${code} ${text}`), { code });
  it("etcd with authentication on: no user, a wrong password, a user etcd does not take, a role without weft's prefix", () => {
    expect(misconfigured(grpc(3, "INVALID_ARGUMENT: etcdserver: user name is empty"))).toBe("etcd has authentication on: give weft an etcd user (ETCD_USERNAME and ETCD_PASSWORD), or a client certificate whose common name is one");
    expect(misconfigured(new Error("etcdserver: authentication failed, invalid user ID or password"))).toBe("etcd refused the user name or password (ETCD_USERNAME, ETCD_PASSWORD)");
    expect(misconfigured(grpc(9, "FAILED_PRECONDITION: etcdserver: authentication is not enabled"))).toMatch(/^an etcd user is set \(ETCD_USERNAME\), but etcd has authentication off/);
    expect(misconfigured(new Error("etcdserver: permission denied"))).toBe("etcd's user for weft may not read or write weft's records: grant its role readwrite on the prefix /weft/ (etcdctl role grant-permission ROLE --prefix=true readwrite /weft/)");
  });

  it("a server that is not etcd (an HTTP/2 server answering 404), and TLS that does not fit; none of these is an outage", () => {
    const http = grpc(12, "UNIMPLEMENTED: Received HTTP status code 404");
    expect(misconfigured(http)).toBe("the server there is not etcd (it answered etcd's calls with HTTP 404)");
    const tls = grpc(14, "UNAVAILABLE: No connection established. Last error: Error: 40F8B5A1:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate (2026-11-27T14:00:00.000Z)");
    expect(misconfigured(tls)).toBe("TLS: etcd refused the connection without an accepted client certificate (ETCD_CERT_FILE, ETCD_KEY_FILE)");
    for (const e of [http, tls]) expect(unreachable(e)).toBeUndefined();
    expect(misconfigured(grpc(14, "UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.30.0.1:2379"))).toBeUndefined();
  });

  it("an etcd user name without its password (or the reverse) is refused before anything is sent", async () => {
    await expect(openDatastore("etcd://127.0.0.1:1", { user: { username: "weft" } })).rejects.toThrow("etcd: ETCD_USERNAME and ETCD_PASSWORD go together (an etcd user and its password)");
    await expect(openDatastore("etcd://127.0.0.1:1", { user: { password: "secret" } })).rejects.toThrow(/go together/);
  });
});
