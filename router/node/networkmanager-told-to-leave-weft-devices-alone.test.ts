// weft node checksystem: NetworkManager takes up the root namespace's interfaces unless
// its configuration leaves them alone (Calico's documentation asks for a conf.d file
// naming its devices in unmanaged-devices); weft's are weft0 and the pods' cali*.
import { describe, expect, it } from "vitest";
import { networkManagerCheck } from "./checksystem.js";

describe("the NetworkManager check", () => {
  it("is fine when NetworkManager does not run, whatever its files say", () => {
    expect(networkManagerCheck(false, [], "weft0")).toEqual({ what: "NetworkManager", result: "OK", detail: "not running" });
  });

  it("warns, with the file to write, when it runs and is not told to leave weft0 and cali* alone", () => {
    const c = networkManagerCheck(true, ["[main]\nplugins=ifupdown,keyfile\n"], "weft0");
    expect(c.result).toBe("WARN");
    expect(c.detail).toBe('running, and not told to leave weft0 and cali* alone: add /etc/NetworkManager/conf.d/weft.conf with "[keyfile]" and "unmanaged-devices=interface-name:cali*;interface-name:weft0" (as Calico\'s documentation asks for its devices), then nmcli general reload');
  });

  it("names only what is left: Calico's own file covers cali* but not weft0", () => {
    const calico = "[keyfile]\nunmanaged-devices=interface-name:cali*;interface-name:tunl*;interface-name:vxlan.calico\n";
    const c = networkManagerCheck(true, [calico], "weft0");
    expect(c.result).toBe("WARN");
    expect(c.detail).toMatch(/^running, and not told to leave weft0 alone: /);
  });

  it.each([
    ["the file it suggests", "[keyfile]\nunmanaged-devices=interface-name:cali*;interface-name:weft0\n"],
    ["globs over two files, one with spaces and commas", "[keyfile]\nunmanaged-devices = interface-name:weft?\n", "[keyfile]\nunmanaged-devices=mac:00:11:22:33:44:55, interface-name:cali*\n"],
    ["every device", "[keyfile]\nunmanaged-devices=*\n"],
    ["an exact name (=) and any case (~)", "[keyfile]\nunmanaged-devices=interface-name:=weft0;interface-name:~CALI*\n"],
  ])("is fine when told: %s", (_what, ...configs) => {
    expect(networkManagerCheck(true, configs, "weft0")).toEqual({ what: "NetworkManager", result: "OK", detail: "running; it leaves weft0 and cali* alone (unmanaged-devices)" });
  });

  it("follows another tunnel device's name, and a glob's dots are dots", () => {
    expect(networkManagerCheck(true, ["unmanaged-devices=interface-name:cali*;interface-name:tun.weft\n"], "tunXweft").result).toBe("WARN");
    expect(networkManagerCheck(true, ["unmanaged-devices=interface-name:cali*;interface-name:tun.weft\n"], "tun.weft").result).toBe("OK");
  });
});
