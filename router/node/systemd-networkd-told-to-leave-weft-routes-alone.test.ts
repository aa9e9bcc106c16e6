// systemd-networkd, when it starts, removes the routes it did not make from the links it
// manages (ManageForeignRoutes, on by default since systemd 246): weft's routes through
// the uplink would be gone until the node's 30 s check. weft node checksystem says so,
// reading networkd's configuration in its order (the last setting wins).
import { describe, expect, it } from "vitest";
import { networkdCheck } from "./checksystem.js";

describe("weft node checksystem and systemd-networkd", () => {
  it("not running: OK", () => {
    expect(networkdCheck(false, [])).toEqual({ what: "systemd-networkd", result: "OK", detail: "not running" });
  });

  it("running with its defaults: WARN naming the uplink, what goes and the drop-in to write", () => {
    const c = networkdCheck(true, ["[Network]\n#ManageForeignRoutes=yes\n"], "ens3");
    expect(c.result).toBe("WARN");
    expect(c.detail).toMatch(/weft's routes through ens3 \(direct and CrossSubnet ones, those from external BGP peers\) would be gone until the node's 30 s check/);
    expect(c.detail).toMatch(/add \/etc\/systemd\/networkd\.conf\.d\/weft\.conf with "\[Network\]" and "ManageForeignRoutes=no", then systemctl restart systemd-networkd/);
  });

  it("told no (any of systemd's words for it) in [Network]: OK; the last file read wins; the key elsewhere counts for nothing", () => {
    for (const no of ["no", "false", "off", "0", "No"]) expect(networkdCheck(true, [`[Network]\nManageForeignRoutes=${no}\n`]).result).toBe("OK");
    expect(networkdCheck(true, ["[Network]\nManageForeignRoutes=no\n", "[Network]\nManageForeignRoutes=yes\n"]).result).toBe("WARN");
    expect(networkdCheck(true, ["[Network]\nManageForeignRoutes=yes\n", "[Network]\nManageForeignRoutes = no\n"]).result).toBe("OK");
    expect(networkdCheck(true, ["[DHCPv4]\nManageForeignRoutes=no\n"]).result).toBe("WARN");
  });
});
