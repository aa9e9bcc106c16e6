// A TCP transfer with checksums at both ends, run inside lab namespaces:
//   node transfer.js recv PORT            -> prints {"bytes":N,"sha256":"..."} when the sender closes
//   node transfer.js send HOST PORT BYTES -> prints the same for what it sent
import net from "node:net";
import { createHash, randomBytes } from "node:crypto";

const [mode, a, b, c] = process.argv.slice(2);
const deadline = setTimeout(() => {
  process.stderr.write("transfer: gave up after 120 s\n");
  process.exit(3);
}, 120_000);

if (mode === "recv") {
  const server = net.createServer((sock) => {
    const h = createHash("sha256");
    let bytes = 0;
    sock.on("data", (d) => {
      h.update(d);
      bytes += d.length;
    });
    sock.on("end", () => {
      process.stdout.write(`${JSON.stringify({ bytes, sha256: h.digest("hex") })}\n`);
      sock.end();
      server.close();
      clearTimeout(deadline);
    });
  });
  server.listen(Number(a), "0.0.0.0", () => process.stderr.write("listening\n"));
} else if (mode === "send") {
  const total = Number(c);
  const h = createHash("sha256");
  const sock = net.connect(Number(b), a, () => {
    let sent = 0;
    const chunk = () => {
      while (sent < total) {
        const d = randomBytes(Math.min(65536, total - sent));
        h.update(d);
        sent += d.length;
        if (!sock.write(d)) return void sock.once("drain", chunk);
      }
      sock.end(() => {
        process.stdout.write(`${JSON.stringify({ bytes: sent, sha256: h.digest("hex") })}\n`);
        clearTimeout(deadline);
      });
    };
    chunk();
  });
  sock.on("error", (err) => {
    process.stderr.write(`transfer: ${err.message}\n`);
    process.exit(2);
  });
} else {
  process.stderr.write("usage: transfer.js recv PORT | send HOST PORT BYTES\n");
  process.exit(2);
}
