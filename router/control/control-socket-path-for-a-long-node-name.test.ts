// A unix socket's path holds 107 bytes and Node shortened a longer one without a word:
// a node named with more than 92 characters (Kubernetes allows 253) listened on a
// path `weft node status --node NAME` never looked at.
import { describe, expect, it } from "vitest";
import { ConfigError } from "../node/config.js";
import { resolveSocket } from "./client.js";
import { controlSocketFree, controlSocketPath, SOCKET_PATH_MAX } from "./server.js";

describe("the control socket's path", () => {
  it("is /run/weft/<node>.sock for a name that fits", () => {
    expect(controlSocketPath("worker-1")).toBe("/run/weft/worker-1.sock");
    const longest = "n".repeat(SOCKET_PATH_MAX - "/run/weft/.sock".length);
    expect(controlSocketPath(longest)).toBe(`/run/weft/${longest}.sock`);
  });

  it("for a name too long for that, its start and a hash: short enough, one per name, and the one --node looks for", () => {
    const a = `${"ip-10-0-1-23.".repeat(18)}compute.internal`; // 250 characters, a valid name
    const b = `${a.slice(0, -1)}x`;
    for (const name of [a, b]) {
      const p = controlSocketPath(name);
      expect(Buffer.byteLength(p)).toBeLessThanOrEqual(SOCKET_PATH_MAX);
      expect(p).toMatch(/^\/run\/weft\/ip-10-0-1-23\.\S+-[0-9a-f]{8}\.sock$/);
      expect(resolveSocket({ node: name })).toBe(p);
    }
    expect(controlSocketPath(a)).not.toBe(controlSocketPath(b));
  });

  it("given too long (--control), is refused before the node touches anything, saying why", async () => {
    const p = `/tmp/${"d".repeat(120)}/node.sock`;
    await expect(controlSocketFree(p)).rejects.toThrow(ConfigError);
    await expect(controlSocketFree(p)).rejects.toThrow(/bytes, and a unix socket's path holds at most 107: give a shorter one with --control/);
  });
});
