import { describe, expect, it } from "vitest";
import { backendOf } from "./iptables.js";

describe("the iptables command's backend", () => {
  it("is read from iptables -V, as 1.8 prints it; before 1.8 there was only legacy", () => {
    expect(backendOf("iptables v1.8.9 (nf_tables)\n")).toBe("nf_tables");
    expect(backendOf("iptables v1.8.9 (legacy)\n")).toBe("legacy");
    expect(backendOf("iptables v1.6.1\n")).toBe("legacy");
  });
});
