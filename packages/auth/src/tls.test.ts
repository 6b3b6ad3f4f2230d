import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { Bus, silentLogger } from "@stackbus/bus";
import { ErrorCode, StackbusError, subjects, wildcards } from "@stackbus/protocol";
import { startNats, tempDir } from "@stackbus/testkit";
import { generateAuth, writeAuth } from "./generate.js";

const Any = z.record(z.string(), z.unknown());

/** A throwaway private CA and certificates it signed, made with openssl. */
function makePki(dir: string) {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run("req", "-x509", ...key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=stackbus test CA");
  const issue = (name: string, ext: string) => {
    run("req", ...key, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    run("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  };
  issue("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  issue("client", "extendedKeyUsage=clientAuth\n");
  // A second CA the server does not trust, with a client certificate of its own.
  mkdirSync(join(dir, "other"));
  execFileSync("openssl", ["req", "-x509", ...key, "-keyout", "other/ca.key", "-out", "other/ca.pem", "-days", "1", "-subj", "/CN=other CA"], { cwd: dir, stdio: "pipe" });
  return { ca: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key"), clientCert: join(dir, "client.pem"), clientKey: join(dir, "client.key"), otherCa: join(dir, "other/ca.pem") };
}

test("auth - TLS with a private CA", async (t) => {
  using dir = tempDir("sb-tls-");
  const pki = makePki(dir.path);
  const storeDir = join(dir.path, "store");
  mkdirSync(storeDir);
  const auth = await generateAuth({ lab: "lab1", hosts: ["compute1"], mode: "nkey", storeDir, tls: { ca: pki.ca, cert: pki.cert, key: pki.key } });
  writeAuth(join(dir.path, "auth"), auth);
  await using server = await startNats({ config: auth.files["server.conf"] ?? "", storeDir });

  const seed = (role: string) => join(dir.path, "auth", auth.users.find((u) => u.role === role)?.credentialFile ?? "");

  await t.test("a client that trusts the CA connects over TLS and works; the env file names the CA", async () => {
    const config = await Bus.connect({ servers: server.url, name: "config", logger: silentLogger(), nkeySeedFile: seed("config"), tls: { caFile: pki.ca } });
    config.serve(wildcards.configGet, Any, Any, () => ({ ok: 1 }));
    await config.flush();
    const agent = await Bus.connect({ servers: server.url, name: "agent", logger: silentLogger(), nkeySeedFile: seed("agent-compute1"), tls: { caFile: pki.ca } });
    assert.deepEqual(await agent.request(subjects.configGet("lab1", "compute1"), Any, {}, Any), { ok: 1 });
    assert.match(auth.files["env/agent-compute1.env"] ?? "", new RegExp(`^STACKBUS_TLS_CA=${pki.ca}$`, "m"));
    await agent.drain();
    await config.drain();
  });

  await t.test("a client without the CA is refused with a message that says TLS and how to fix it", async () => {
    await assert.rejects(
      Bus.connect({ servers: server.url, name: "agent", logger: silentLogger(), nkeySeedFile: seed("agent-compute1") }),
      (err: unknown) => {
        assert.ok(err instanceof StackbusError);
        assert.equal(err.code, ErrorCode.Unavailable);
        assert.match(err.message, /TLS/);
        assert.match(err.message, /--tls-ca|STACKBUS_TLS_CA/);
        return true;
      },
    );
    await assert.rejects(
      Bus.connect({ servers: server.url, name: "agent", logger: silentLogger(), nkeySeedFile: seed("agent-compute1"), tls: { caFile: pki.otherCa } }),
      (err: unknown) => (err as StackbusError).code === ErrorCode.Unavailable && /TLS/.test((err as Error).message),
    );
  });

  await t.test("with verifyClients, only a client certificate signed by the CA gets in (mutual TLS)", async () => {
    const storeDir = join(dir.path, "store-mtls");
    mkdirSync(storeDir);
    const mtls = await generateAuth({ lab: "lab1", hosts: ["compute1"], mode: "nkey", storeDir, tls: { ca: pki.ca, cert: pki.cert, key: pki.key, verifyClients: true } });
    writeAuth(join(dir.path, "mtls"), mtls);
    assert.match(mtls.files["env/agent-compute1.env"] ?? "", /^STACKBUS_TLS_CERT=\/etc\/stackbus\/agent-compute1\.crt$/m);
    const mserver = await startNats({ config: mtls.files["server.conf"] ?? "", storeDir });
    try {
      const seedFile = join(dir.path, "mtls", "agent-compute1.nk");
      await assert.rejects(
        Bus.connect({ servers: mserver.url, name: "agent", logger: silentLogger(), nkeySeedFile: seedFile, tls: { caFile: pki.ca } }),
        (err: unknown) => {
          assert.ok(err instanceof StackbusError);
          assert.equal(err.code, ErrorCode.NatsUnreachable);
          assert.match(err.message, /client certificates .*--tls-cert/);
          return true;
        },
      );
      const bus = await Bus.connect({
        servers: mserver.url,
        name: "agent",
        logger: silentLogger(),
        nkeySeedFile: seedFile,
        tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey },
      });
      await bus.publishConfirmed(subjects.hostHeartbeat("lab1", "compute1"), Any, { at: 1 });
      await bus.drain();
    } finally {
      await mserver.stop();
    }
  });
});
