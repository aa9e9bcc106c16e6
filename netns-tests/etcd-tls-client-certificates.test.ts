// etcd over TLS with client certificates, as production Calico clusters run it: the
// weft command and weft-cni reach it with Calico's ETCD_CA_CERT_FILE, ETCD_CERT_FILE
// and ETCD_KEY_FILE; without a client certificate, or with a file that is not there,
// they say so in one line. With etcd's authentication on, the certificate names the user.
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdServer } from "../router/lab/etcd.js";
import { projectRoot } from "../router/native/index.js";
import { tempDir } from "../router/temp-dir.test-helper.js";

const dir = tempDir("etcd-tls");
const f = (name: string) => path.join(dir, name);

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all from openssl. */
function makeCertificates(): void {
  const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=weft test CA"]);
  for (const [who, ext] of [["server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"], ["client", "extendedKeyUsage=clientAuth"]]) {
    writeFileSync(f(`${who}.ext`), `${ext}\n`);
    ssl(["req", ...ec, "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=weft-${who}`]);
    ssl(["x509", "-req", "-in", `${who}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${who}.crt`, "-days", "2", "-extfile", `${who}.ext`]);
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
