import assert from "node:assert/strict";
import { commandSigner } from "@stackbus/bus";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { z } from "zod";
import { Bus, silentLogger } from "@stackbus/bus";
import { ErrorCode, InvalidNameError, STREAMS, StackbusError, subjects } from "@stackbus/protocol";
import { freePort, startNats, tempDir, waitFor, type NatsServer } from "@stackbus/testkit";
import { generateAuth, writeAuth } from "./generate.js";

const Any = z.record(z.string(), z.unknown());

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

describe("generate - identities, files and environment", () => {
  it("makes one identity per service role and per host, each with its own secret and inbox", async () => {
    const g = await generateAuth({ lab: "lab1", hosts: ["controller", "compute1"], mode: "nkey" });
    assert.deepEqual(
      g.users.map((u) => u.role),
      ["coordinator", "config", "fetcher", "operator", "watcher", "agent-controller", "agent-compute1"],
    );
    assert.equal(new Set(g.users.map((u) => u.user)).size, g.users.length);
    for (const u of g.users) {
      assert.match(u.user, /^U[A-Z2-7]{55}$/);
      assert.match(u.secret, /^SU[A-Z2-7]{56}$/);
      assert.equal(u.inboxPrefix, `_INBOX.${u.user}`);
      assert.deepEqual(u.permissions.subscribe.allow.filter((s) => s.startsWith("_INBOX")), [`${u.inboxPrefix}.>`]);
      assert.equal(g.files[u.credentialFile], `${u.secret}\n`);
      assert.ok(g.files["server.conf"]?.includes(u.user));
      assert.ok(!g.files["server.conf"]?.includes(u.secret), "the server config holds no seed");
    }
  });

  it("refuses a bad lab or host name, a repeated host and an empty host list, naming the value", async () => {
    await assert.rejects(generateAuth({ lab: "a.b", hosts: ["h"], mode: "nkey" }), (e: unknown) => e instanceof InvalidNameError && e.value === "a.b");
    await assert.rejects(generateAuth({ lab: "lab", hosts: ["ok", "*"], mode: "nkey" }), (e: unknown) => e instanceof InvalidNameError && e.kind === "host" && e.value === "*");
    await assert.rejects(generateAuth({ lab: "lab", hosts: ["c1", "c1"], mode: "nkey" }), /host "c1" is listed twice/);
    await assert.rejects(generateAuth({ lab: "lab", hosts: [], mode: "nkey" }), /at least one host/);
    await assert.rejects(generateAuth({ lab: "lab", hosts: ["h"], mode: "token" as "nkey" }), /"nkey" or "password"/);
  });

  it("writes environment files with the variables the CLI and the systemd units read", async () => {
    const g = await generateAuth({
      lab: "lab1",
      hosts: ["compute1"],
      mode: "nkey",
      servers: ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"],
      replicas: 3,
      installDir: "/etc/sb",
    });
    const env = parseEnv(g.files["env/agent-compute1.env"] ?? "");
    const signing = (g.files["coordinator-sign.nk"] ?? "").trim();
    assert.match(signing, /^SU[A-Z2-7]{56}$/, "the coordinator's command signing seed");
    assert.deepEqual(env, {
      NATS_URL: "nats://n1:4222,nats://n2:4222,nats://n3:4222",
      STACKBUS_NATS_NKEY: "/etc/sb/agent-compute1.nk",
      STACKBUS_LAB: "lab1",
      STACKBUS_REPLICAS: "3",
      STACKBUS_COORDINATOR_KEY: commandSigner(signing).publicKey,
    });
    assert.equal(parseEnv(g.files["env/coordinator.env"] ?? "")["STACKBUS_SIGNING_KEY"], "/etc/sb/coordinator-sign.nk");
    assert.match(g.files["env/agent-compute1.env"] ?? "", /^#STACKBUS_STATE_DIR=/m);
    await assert.rejects(generateAuth({ lab: "l", hosts: ["h"], mode: "nkey", installDir: "/etc/my dir" }), (e: unknown) => (e as StackbusError).code === ErrorCode.InvalidArgument);
  });

  it("writes every secret 0600 and does not replace an existing output unless told to", async () => {
    const dir = tempDir("sb-authw-");
    try {
      const g = await generateAuth({ lab: "lab1", hosts: ["compute1"], mode: "nkey" });
      const written = writeAuth(dir.path, g);
      assert.equal(written.length, Object.keys(g.files).length);
      for (const rel of ["server.conf", "cluster/node-1.conf", "agent-compute1.nk", "env/agent-compute1.env", "watcher.nk"]) {
        assert.equal(statSync(join(dir.path, rel)).mode & 0o777, 0o600, rel);
      }
      assert.equal(statSync(join(dir.path, "README.md")).mode & 0o777, 0o644);
      const again = await generateAuth({ lab: "lab1", hosts: ["compute1"], mode: "nkey" });
      assert.throws(() => writeAuth(dir.path, again), (e: unknown) => (e as StackbusError).code === ErrorCode.Conflict && /already exists/.test((e as Error).message));
      assert.equal(readFileSync(join(dir.path, "agent-compute1.nk"), "utf8"), g.files["agent-compute1.nk"]);
      writeAuth(dir.path, again, { overwrite: true });
      assert.equal(readFileSync(join(dir.path, "agent-compute1.nk"), "utf8"), again.files["agent-compute1.nk"]);
    } finally {
      dir.remove();
    }
  });
});

test("generate - password identities on a real nats-server", async (t) => {
  using dir = tempDir("sb-authp-");
  const storeDir = join(dir.path, "store");
  mkdirSync(storeDir);
  const g = await generateAuth({ lab: "lab1", hosts: ["compute1", "compute2"], mode: "password", storeDir, bcryptCost: 6 });
  writeAuth(join(dir.path, "out"), g);
  await using server = await startNats({ config: g.files["server.conf"] ?? "", storeDir });

  await t.test("keeps only bcrypt hashes in the server config and lets each role in with the password from its env file", async () => {
    for (const u of g.users) {
      assert.ok(!g.files["server.conf"]?.includes(u.secret), `${u.role}'s password is in server.conf`);
      assert.deepEqual(parseEnv(g.files[u.credentialFile] ?? ""), { STACKBUS_NATS_USER: u.role, STACKBUS_NATS_PASSWORD: u.secret });
    }
    const envOf = (role: string) => parseEnv(readFileSync(join(dir.path, "out", "env", `${role}.env`), "utf8"));
    const connect = (role: string) => {
      const env = envOf(role);
      return Bus.connect({ servers: server.url, name: role, logger: silentLogger(), user: env["STACKBUS_NATS_USER"], pass: env["STACKBUS_NATS_PASSWORD"] });
    };
    const coordinator = await connect("coordinator");
    await coordinator.ensureStackbusStreams();
    const agent = await connect("agent-compute1");
    assert.equal(agent.inboxPrefix, "_INBOX.agent-compute1");
    const ack = await agent.publishDurable(subjects.runResult("lab1", "r1", "compute1"), Any, { status: "ok" });
    assert.equal(ack.stream, STREAMS.runs);
    await assert.rejects(
      agent.publishDurable(subjects.runResult("lab1", "r1", "compute2"), Any, { status: "ok" }),
      (e: unknown) => (e as StackbusError).code === ErrorCode.PermissionDenied && /"agent-compute1" may not publish/.test((e as Error).message),
    );
    await agent.drain();
    await coordinator.drain();
  });

  await t.test("refuses a wrong password, and another role's password, at connect", async () => {
    const agent2 = g.users.find((u) => u.role === "agent-compute2");
    for (const pass of ["wrong", agent2?.secret ?? ""]) {
      await assert.rejects(
        Bus.connect({ servers: server.url, name: "x", logger: silentLogger(), user: "agent-compute1", pass }),
        (e: unknown) => (e as StackbusError).code === ErrorCode.PermissionDenied && /refused the credentials of NATS user "agent-compute1"/.test((e as Error).message),
      );
    }
  });
});

describe("generate - the 3-node cluster configs", () => {
  it("form a JetStream cluster with the same users, where an R3 stream takes an agent's result", async () => {
    const dir = tempDir("sb-authc-");
    const servers: NatsServer[] = [];
    try {
      const storeDirs = [1, 2, 3].map((i) => {
        const d = join(dir.path, `n${i}`);
        mkdirSync(d);
        return d;
      });
      const g = await generateAuth({ lab: "lab1", hosts: ["compute1"], mode: "nkey", clusterHosts: ["n1", "n2", "n3"], storeDir: "STORE" });
      writeAuth(join(dir.path, "out"), g);
      const routePorts = [await freePort(), await freePort(), await freePort()];
      const configs = [1, 2, 3].map((i) => {
        let text = g.files[`cluster/node-${i}.conf`] ?? "";
        assert.ok(text.includes(g.files["server.conf"]?.slice(g.files["server.conf"].indexOf("authorization {")) ?? "-"), "same users as server.conf");
        text = text.replace('"STORE"', JSON.stringify(storeDirs[i - 1]));
        text = text.replace('listen: "0.0.0.0:6222"', `listen: "127.0.0.1:${routePorts[i - 1]}"`);
        routePorts.forEach((p, j) => (text = text.replace(`@n${j + 1}:6222`, `@127.0.0.1:${p}`)));
        return text;
      });
      servers.push(...(await Promise.all(configs.map((config, i) => startNats({ config, storeDir: storeDirs[i] })))));
      const urls = servers.map((s) => s.url).join(",");
      const seed = (role: string) => join(dir.path, "out", `${role}.nk`);
      const coordinator = await Bus.connect({ servers: urls, name: "coordinator", logger: silentLogger(), nkeySeedFile: seed("coordinator"), replicas: 3 });
      await waitFor("the cluster's JetStream", async () => {
        const reply = await coordinator.nc.request("$JS.API.INFO", "", { timeout: 500 });
        return !("error" in (reply.json<Record<string, unknown>>()));
      }, 15_000);
      await coordinator.ensureStackbusStreams();
      assert.equal((await (await coordinator.jsm()).streams.info(STREAMS.runs)).config.num_replicas, 3);
      const agent = await Bus.connect({ servers: servers[2]?.url, name: "agent", logger: silentLogger(), nkeySeedFile: seed("agent-compute1") });
      await agent.publishDurable(subjects.runResult("lab1", "r1", "compute1"), Any, { status: "ok" }, { msgID: "x" });
      await assert.rejects(agent.publishConfirmed(subjects.hostHeartbeat("lab1", "other"), Any, {}), (e: unknown) => (e as StackbusError).code === ErrorCode.PermissionDenied);
      assert.equal((await coordinator.readStream(STREAMS.runs, "sb.lab1.run.>")).length, 1);
      await agent.drain();
      await coordinator.drain();
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      dir.remove();
    }
  });
});
