// A static node's ICMP errors come from the node's address, which reverse-path filtering
// drops on the tunnel (loose or strict): it says so at start, with what to set.
import { describe, expect, it } from "vitest";
import { reversePathFilterWarning } from "./run.js";

describe("a static node on a host with reverse-path filtering", () => {
  it("warns for strict (1) and loose (2, Ubuntu's default), naming the devices and the value that works", () => {
    expect(reversePathFilterWarning("1", "weft0", "eth0")).toMatch(/^reverse-path filtering \(net\.ipv4\.conf\.all\.rp_filter = 1: strict, as hardening guides set it\) drops the ICMP errors weft writes into weft0 from this node's address, which the kernel routes through eth0: .* Set it to 0 \(each interface's own rp_filter then applies; weft0's is 0\)/);
    expect(reversePathFilterWarning("2", "wt1", "ens3")).toMatch(/= 2: loose, Ubuntu's default\) drops the ICMP errors weft writes into wt1 .* through ens3/);
  });
  it("says nothing when it is off or cannot be read", () => {
    expect(reversePathFilterWarning("0", "weft0", "eth0")).toBeUndefined();
    expect(reversePathFilterWarning(undefined, "weft0", "eth0")).toBeUndefined();
  });
});
