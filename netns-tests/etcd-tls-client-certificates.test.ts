// etcd over TLS with client certificates, as production Calico clusters run it: the
// weft command and weft-cni reach it with Calico's ETCD_CA_CERT_FILE, ETCD_CERT_FILE
// and ETCD_KEY_FILE; without a client certificate, or with a file that is not there,
// they say so in one line. With etcd's authentication on, the certificate names the user.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdServer } from "../router/lab/etcd.js";
import { openDatastore } from "../router/store/store.js";
import { projectRoot } from "../router/native/index.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const dir = tempDir("etcd-tls");
const f = (name: string) => path.join(dir, name);

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all from openssl (files named prefix + ca.crt, ...). */
function makeCertificates(prefix = ""): void {
  const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl(["req", "-x509", ...ec, "-keyout", `${prefix}ca.key`, "-out", `${prefix}ca.crt`, "-days", "2", "-subj", `/CN=weft test CA ${prefix}`]);
  for (const [who, ext] of [["server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"], ["client", "extendedKeyUsage=clientAuth"]]) {
    writeFileSync(f(`${who}.ext`), `${ext}\n`);
    ssl(["req", ...ec, "-keyout", `${prefix}${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=weft-${who}`]);
    ssl(["x509", "-req", "-in", `${who}.csr`, "-CA", `${prefix}ca.crt`, "-CAkey", `${prefix}ca.key`, "-CAcreateserial", "-out", `${prefix}${who}.crt`, "-days", "2", "-extfile", `${who}.ext`]);
  }
}

const etcd = new EtcdServer({ dir: f("etcd"), host: "127.0.0.1", port: 23810, tls: { ca: f("ca.crt"), cert: f("server.crt"), key: f("server.key") } });
beforeAll(async () => {
  makeCertificates();
  await etcd.start();
}, 60_000);
afterAll(() => etcd.stop());

const cli = path.join(projectRoot(), "dist", "router", "cli", "main.js");
const certs = { ETCD_CA_CERT_FILE: f("ca.crt"), ETCD_CERT_FILE: f("client.crt"), ETCD_KEY_FILE: f("client.key") };
const weft = (args: string[], env: Record<string, string>) => spawnSync(process.execPath, [cli, ...args, "--datastore", etcd.url], { encoding: "utf8", timeout: 30_000, env: { PATH: process.env.PATH ?? "", ...env } });

describe("etcd over TLS (etcds://) with client certificates", () => {
  it("with Calico's ETCD_* certificate variables: apply and get work", () => {
    writeFileSync(f("pool.yaml"), "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: tls-pool}\nspec: {cidr: 10.77.0.0/16}\n");
    const a = weft(["apply", "-f", f("pool.yaml")], certs);
    expect(a.stderr).toBe("");
    expect(a.stdout).toBe("IPPool(tls-pool) created\n");
    expect(weft(["get", "ippool"], certs).stdout).toMatch(/tls-pool\s+10\.77\.0\.0\/16/);
  });

  it("weft-cni reaches it with the certificate fields of its network configuration", () => {
    const conf = { cniVersion: "1.1.0", name: "weft", type: "weft-cni", datastore: etcd.url, etcd_ca_cert_file: f("ca.crt"), etcd_cert_file: f("client.crt"), etcd_key_file: f("client.key") };
    const r = spawnSync(process.execPath, [path.join(projectRoot(), "dist", "router", "cni", "main.js")], { input: JSON.stringify(conf), encoding: "utf8", env: { PATH: process.env.PATH ?? "", CNI_COMMAND: "STATUS" }, timeout: 30_000 });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  it("without a client certificate: refused by etcd, one line, exit 1", () => {
    const r = weft(["get", "ippool"], { ETCD_CA_CERT_FILE: f("ca.crt") });
    console.log(`[etcd-tls] no client certificate: ${r.stderr.trim()}`);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/datastore etcds:\/\/127\.0\.0\.1:23810: TLS: etcd refused the connection without an accepted client certificate \(ETCD_CERT_FILE, ETCD_KEY_FILE\)/);
  });

  it("without the CA that signed etcd's certificate: says so, exit 1", () => {
    const r = weft(["get", "ippool"], { ETCD_CERT_FILE: f("client.crt"), ETCD_KEY_FILE: f("client.key") });
    console.log(`[etcd-tls] no CA: ${r.stderr.trim()}`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/TLS: etcd's certificate is not signed by a CA we trust \(ETCD_CA_CERT_FILE\)/);
  });

  it("a certificate file that is not there: exit 2 naming the variable and the file", () => {
    const r = weft(["get", "ippool"], { ...certs, ETCD_CERT_FILE: f("nope.crt") });
    expect(r.stderr.trim()).toBe(`weft: etcds: ETCD_CERT_FILE ${f("nope.crt")} cannot be read (ENOENT)`);
    expect(r.status).toBe(2);
  });

  it("certificates renewed on disk under a running node's client (a new CA; etcd restarted with it): the next call connects with the new files, says so, and the watch starts again", async () => {
    makeCertificates("old-");
    makeCertificates("new-");
    const live = { ca: f("live-ca.crt"), cert: f("live-client.crt"), key: f("live-client.key") };
    const server = { ca: f("live-ca.crt"), cert: f("live-server.crt"), key: f("live-server.key") };
    const install = (from: string) => {
      for (const n of ["ca.crt", "client.crt", "client.key", "server.crt", "server.key"]) copyFileSync(f(`${from}${n}`), f(`live-${n}`));
    };
    install("old-");
    const renewed = new EtcdServer({ dir: f("etcd-renewed"), host: "127.0.0.1", port: 23812, tls: server });
    await renewed.start();
    const store = await openDatastore(renewed.url, { tls: live });
    const said: string[] = [];
    store.notify = (message) => said.push(message);
    try {
      const rev = await store.txn([{ op: "create", key: "/weft/renewal/a", value: "1" }]);
      const watchErrors: string[] = [];
      const w = store.watch("/weft/renewal/", rev, () => undefined, (err) => watchErrors.push(err.message));
      await renewed.stop();
      install("new-");
      await renewed.start();
      const t = Date.now();
      const items = (await store.list("/weft/renewal/")).items.map((kv) => kv.key);
      console.log(`[etcd-tls] certificates renewed under a running client: the next call answered after ${Date.now() - t} ms; said: ${said.join("; ")}; watch: ${watchErrors.join("; ")}`);
      expect(items).toEqual(["/weft/renewal/a"]);
      expect(said).toEqual(["etcd's certificate files changed: connecting with the new ones"]);
      expect(watchErrors.some((m) => /renewed certificates/.test(m))).toBe(true);
      w.stop();
      // A watch made again sees what is written after it.
      const seen: string[] = [];
      const again = store.watch("/weft/renewal/", rev, (events) => seen.push(...events.map((e) => e.key)), () => undefined);
      await store.txn([{ op: "create", key: "/weft/renewal/b", value: "2" }]);
      for (let i = 0; i < 50 && !seen.includes("/weft/renewal/b"); i++) await new Promise((r) => setTimeout(r, 100));
      again.stop();
      expect(seen).toContain("/weft/renewal/b");
    } finally {
      await store.close();
      await renewed.stop();
    }
  }, 60_000);

  // Last: it turns etcd's authentication on.
  it("with etcd's authentication on, the certificate's common name is the etcd user (Calico's RBAC guide): no ETCD_USERNAME needed; a role without /weft/ is named", () => {
    const etcdctl = (args: string[]) => execFileSync("etcdctl", ["--endpoints", "https://127.0.0.1:23810", "--cacert", f("ca.crt"), "--cert", f("client.crt"), "--key", f("client.key"), ...args], { stdio: "pipe" });
    etcdctl(["user", "add", "root", "--new-user-password", "root-secret"]);
    etcdctl(["user", "grant-role", "root", "root"]);
    etcdctl(["role", "add", "weft"]);
    etcdctl(["role", "grant-permission", "weft", "--prefix=true", "readwrite", "/weft/"]);
    etcdctl(["user", "add", "weft-client", "--no-password"]);
    etcdctl(["user", "grant-role", "weft-client", "weft"]);
    etcdctl(["auth", "enable"]);
    expect(weft(["get", "ippool"], certs).stdout).toMatch(/tls-pool\s+10\.77\.0\.0\/16/);
    // Now as root (the certificate is weft-client's), take the role's prefix away.
    execFileSync("etcdctl", ["--endpoints", "https://127.0.0.1:23810", "--cacert", f("ca.crt"), "--cert", f("client.crt"), "--key", f("client.key"), "--user", "root:root-secret", "role", "revoke-permission", "weft", "/weft/", "--prefix=true"], { stdio: "pipe" });
    const r = weft(["get", "ippool"], certs);
    console.log(`[etcd-tls] the certificate's user without /weft/: ${r.stderr.trim()}`);
    expect(r.stderr).toContain("etcd's user for weft may not read or write weft's records: grant its role readwrite on the prefix /weft/");
    expect(r.status).toBe(1);
  });
});
