// A real container runtime: podman (network_backend cni, runc, a busybox-static rootfs
// imported without a registry) starts a container on worker-1 through weft-cni; it
// pings and opens TCP to pod-3 on worker-3; removing it removes veth, route and address.
// Then Calico's usual chain (weft-cni, bandwidth, portmap): a published port on worker-1
// reaches a container from pod-3, and removal takes portmap's rules with it.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { useLab } from "./helpers.js";
import { projectRoot } from "../router/native/index.js";

describe("podman through weft-cni", () => {
  let dir = "";
  let env: NodeJS.ProcessEnv = {};
  const lab = useLab("tpod", "ipip", {
    datastore: "sqlite",
    setup: async (l) => {
      dir = path.join(l.dir, "podman");
      for (const d of ["cni-bin", "net.d", "rootfs/bin", "storage", "run"]) mkdirSync(path.join(dir, d), { recursive: true });
      copyFileSync("/usr/bin/busybox", path.join(dir, "rootfs/bin/busybox"));
      for (const c of ["sh", "ping", "sleep", "ip", "nc", "cat"]) symlinkSync("busybox", path.join(dir, "rootfs/bin", c));
      writeFileSync(path.join(dir, "cni-bin/weft-cni"), `#!/bin/sh\nexec ${process.execPath} ${path.join(projectRoot(), "dist/router/cni/main.js")} "$@"\n`, { mode: 0o755 });
      // The conflist a user writes (the README shows the same).
      writeFileSync(path.join(dir, "net.d/weft.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "weft", plugins: [{ type: "weft-cni", datastore: l.datastoreURL, nodename: "worker-1", log_file: path.join(dir, "cni.log"), capabilities: { ips: true } }] }));
      // Calico's conflist shape: the plugin, then bandwidth and portmap, which read its result.
      const chained = [
        { type: "weft-cni", datastore: l.datastoreURL, nodename: "worker-1", log_file: path.join(dir, "cni.log") },
        { type: "bandwidth", capabilities: { bandwidth: true } },
        { type: "portmap", snat: true, capabilities: { portMappings: true } },
      ];
      writeFileSync(path.join(dir, "net.d/weft-chained.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "weft-chained", plugins: chained }));
      writeFileSync(path.join(dir, "containers.conf"), `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["${dir}/cni-bin", "/usr/lib/cni"]\nnetwork_config_dir = "${dir}/net.d"\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`);
      writeFileSync(path.join(dir, "storage.conf"), `[storage]\ndriver = "vfs"\nrunroot = "${dir}/run"\ngraphroot = "${dir}/storage"\n`);
      env = { ...process.env, CONTAINERS_CONF: path.join(dir, "containers.conf"), CONTAINERS_STORAGE_CONF: path.join(dir, "storage.conf") };
      const tar = spawn("tar", ["-C", path.join(dir, "rootfs"), "-c", "."]);
      const imp = spawn("podman", ["import", "-", "localhost/busybox:weft"], { env, stdio: [tar.stdout, "ignore", "inherit"] });
      await new Promise((r) => imp.on("close", r));
    },
  });
  // podman inside worker-1's network namespace: nsenter, not ip netns exec (which
  // remounts /sys and hides the cgroup mounts runc needs).
  const podman = (args: string[]) => execFileSync("nsenter", [`--net=/run/netns/${lab.ns("worker-1")}`, "podman", ...args], { env, encoding: "utf8", timeout: 60_000 });
  afterAll(() => {
    try {
      podman(["rm", "-af", "-t", "0"]);
    } catch {
      /* nothing to remove */
    }
  });

  it("starts a container on worker-1 that pings and opens TCP to pod-3; removing it leaves nothing", async () => {
    const hostLinks = async () => (await lab.exec("worker-1", ["ip", "-o", "link"])).split("\n").filter((l) => / cali[0-9a-f]{11}@/.test(l)).length;
    const before = await hostLinks();
    const ipamBefore = await lab.weft(["ipam", "show"]);
    podman(["run", "-d", "--name", "c1", "--network", "weft", "localhost/busybox:weft", "sleep", "600"]);
    const inet = podman(["exec", "c1", "ip", "-4", "addr", "show", "eth0"]);
    const address = /inet (\d+\.\d+\.\d+\.\d+)\/32/.exec(inet)![1];
    console.log(`[tpod] container c1 got ${address}; routes: ${podman(["exec", "c1", "ip", "route"]).trim().replace(/\n/g, " / ")}`);
    expect(await hostLinks()).toBe(before + 1);
    const pod3 = lab.podAddress("pod-3");
    expect(podman(["exec", "c1", "ping", "-c", "2", "-W", "2", pod3])).toMatch(/2 packets received/);
    const server = spawn("ip", ["netns", "exec", lab.ns("pod-3"), "busybox", "nc", "-l", "-p", "8080"]);
    let got = "";
    server.stdout.on("data", (d) => (got += d));
    await new Promise((r) => setTimeout(r, 300));
    podman(["exec", "c1", "sh", "-c", `echo hello-from-podman | nc -w 2 ${pod3} 8080`]);
    await new Promise((r) => setTimeout(r, 300));
    server.kill();
    expect(got.trim()).toBe("hello-from-podman");
    podman(["rm", "-f", "-t", "0", "c1"]);
    expect(await hostLinks()).toBe(before);
    expect(await lab.exec("worker-1", ["ip", "route", "show", `${address}/32`])).toBe("");
    expect(await lab.weft(["ipam", "show"])).toBe(ipamBefore);
  });

  it("podman run --ip: the container gets the address it asked for (in worker-1's block), reaches pod-3; a second container asking for it is refused and takes nothing", async () => {
    const block = (await lab.exec("worker-1", ["ip", "route", "show", "proto", "87", "type", "blackhole"])).trim().split(/\s+/)[1];
    const [a, b, c, d] = block.split("/")[0].split(".").map(Number);
    const want = `${a}.${b}.${c}.${d + 50}`;
    podman(["run", "-d", "--name", "cip", "--network", "weft", "--ip", want, "localhost/busybox:weft", "sleep", "600"]);
    try {
      expect(podman(["exec", "cip", "ip", "-4", "addr", "show", "eth0"])).toContain(`inet ${want}/32`);
      expect(podman(["exec", "cip", "ping", "-c", "1", "-W", "2", lab.podAddress("pod-3")])).toMatch(/1 packets received/);
      const ipamBefore = await lab.weft(["ipam", "show"]);
      let refused = "";
      try {
        podman(["run", "-d", "--name", "cip2", "--network", "weft", "--ip", want, "localhost/busybox:weft", "sleep", "600"]);
      } catch (err) {
        refused = String((err as { stderr?: string }).stderr);
      }
      console.log(`[tpod] a second container asking for ${want}: ${refused.trim().split("\n").pop()}`);
      expect(refused).toContain(`${want} is already in use`);
      expect(await lab.weft(["ipam", "show"])).toBe(ipamBefore);
    } finally {
      podman(["rm", "-f", "-t", "0", "cip"]);
      try {
        podman(["rm", "-f", "-t", "0", "cip2"]);
      } catch {
        /* never made */
      }
    }
  });

  it("Calico's chain (weft-cni, bandwidth, portmap): a port published on worker-1 reaches the container from pod-3; removal takes portmap's rules too", async () => {
    const dnat = async () => (await lab.exec("worker-1", ["iptables-save", "-t", "nat"])).split("\n").filter((l) => /CNI-DN|CNI-HOSTPORT/.test(l) && /8080/.test(l)).length;
    podman(["run", "-d", "--name", "c2", "--network", "weft-chained", "-p", "8080:80", "localhost/busybox:weft", "sh", "-c", "while true; do echo hello-through-portmap | nc -l -p 80; done"]);
    const address = /inet (\d+\.\d+\.\d+\.\d+)\/32/.exec(podman(["exec", "c2", "ip", "-4", "addr", "show", "eth0"]))![1];
    const rules = await dnat();
    let got = "";
    for (let i = 0; i < 20 && !got; i++) {
      got = (await lab.exec("pod-3", ["busybox", "nc", "-w", "2", "10.30.0.11", "8080"], { allowFail: true })).trim();
      if (!got) await new Promise((r) => setTimeout(r, 250));
    }
    console.log(`[tpod] chained: c2 got ${address}; portmap DNAT rules for 8080 on worker-1: ${rules}; pod-3 -> 10.30.0.11:8080 read "${got}"`);
    expect(rules).toBeGreaterThan(0);
    expect(got).toBe("hello-through-portmap");
    podman(["rm", "-f", "-t", "0", "c2"]);
    expect(await dnat()).toBe(0);
    expect(await lab.exec("worker-1", ["ip", "route", "show", `${address}/32`])).toBe("");
  });
});
