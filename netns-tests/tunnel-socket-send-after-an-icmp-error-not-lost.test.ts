// A tunnel socket (IP_RECVERR on, so weft learns path MTUs and unreachable peers) keeps
// an ICMP error about something it sent pending until it is read; the next send on that
// socket, to any destination, used to take that error and lose its own packet. Here: a
// datagram to a closed port (ICMP port unreachable) leaves the error pending, the next
// one goes to a listener. It must arrive, and the error must still be there to read.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeNamespace, requireRoot } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";

const run = promisify(execFile);
const NS = "tsockerr";

const probe = (index: string) => `
import { native, KIND_SOCK } from ${JSON.stringify(index)};
import dgram from "node:dgram";
const n = native();
const mem = new ArrayBuffer(1 << 16);
const bytes = new Uint8Array(mem);
const dv = new DataView(mem);
const send = (fd, port) => {
  bytes.set(new TextEncoder().encode("hello"), 4096);
  dv.setUint32(0, 4096, true); dv.setUint32(4, 5, true); dv.setUint32(8, 0x7f000001, true); dv.setUint16(12, port, true); bytes[14] = 1;
  return n.sendBatch(fd, KIND_SOCK, mem, 0, 1, 1, false);
};
const rx = dgram.createSocket("udp4");
let received = 0;
rx.on("message", () => received++);
rx.bind(0, "127.0.0.1", async () => {
  const fd = n.udpOpen("0.0.0.0", 0);
  const toClosed = send(fd, 9);
  await new Promise((r) => setTimeout(r, 50));
  const toListener = send(fd, rx.address().port);
  await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify({ toClosed, toListener, received, errors: n.socketErrors(fd) }));
  process.exit(0);
});
`;

describe("a send after an ICMP error on the tunnel socket", () => {
  beforeAll(async () => {
    requireRoot();
    await removeNamespace(NS);
    await run("ip", ["netns", "add", NS]);
    await run("ip", ["-n", NS, "link", "set", "lo", "up"]);
  });
  afterAll(() => removeNamespace(NS));

  it("is not lost to the error pending from an earlier packet, and the error is still reported", async () => {
    const index = path.join(projectRoot(), "dist", "router", "native", "index.js");
    const { stdout } = await run("ip", ["netns", "exec", NS, process.execPath, "--input-type=module", "-e", probe(index)]);
    const r = JSON.parse(stdout) as { toClosed: number; toListener: number; received: number; errors: Array<[number, number, number]> };
    console.log(`[tsockerr] sent to a closed port ${r.toClosed}, then to a listener ${r.toListener} (received ${r.received}); errors read after: ${JSON.stringify(r.errors)}`);
    expect(r.toListener).toBe(1);
    expect(r.received).toBe(1);
    expect(r.errors).toEqual([[0x7f000001, 0, 111]]); // ECONNREFUSED from 127.0.0.1
  });
});
