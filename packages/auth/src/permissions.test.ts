import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { createUser } from "@nats-io/nkeys";
import { Bus, PermissionDeniedError, silentLogger } from "@stackbus/bus";
import { BUCKETS, ErrorCode, OBJECT_STORES, QUEUES, STREAMS, StackbusError, keys, subjects, wildcards } from "@stackbus/protocol";
import { startNats, tempDir, waitFor } from "@stackbus/testkit";
import { mkdirSync, writeFileSync } from "node:fs";
import { generateAuth, writeAuth, type GeneratedUser } from "./generate.js";

const LAB = "lab1";
const HOSTS = ["controller", "compute1", "compute2"];
const Any = z.record(z.string(), z.unknown());
const SHA = "a".repeat(40);

/** Asserts a PERMISSION_DENIED error naming the subject (and the user by its role, its nkey in the data, when given). */
function denied(operation: string, subject: string, user?: GeneratedUser) {
  return (err: unknown) => {
    assert.ok(err instanceof PermissionDeniedError, `expected PermissionDeniedError, got ${String(err)}`);
    assert.equal(err.code, ErrorCode.PermissionDenied);
    assert.equal(err.operation, operation);
    assert.equal(err.subject, subject);
    assert.ok(err.message.includes(JSON.stringify(subject)), err.message);
    if (user) {
      assert.equal(err.user, user.user);
      assert.ok(err.message.includes(`NATS user "${user.role}"`), err.message);
      if (user.user !== user.role) assert.ok(!err.message.includes(user.user), `the message names the role, not the nkey: ${err.message}`);
    }
    return true;
  };
}

test("auth - each role does its job and nothing else, on a real nats-server (nkeys)", async (t) => {
  using dir = tempDir("sb-auth-");
  const storeDir = join(dir.path, "store");
  mkdirSync(storeDir);
  const auth = await generateAuth({ lab: LAB, hosts: HOSTS, mode: "nkey", storeDir });
  writeAuth(dir.path, auth);
  await using server = await startNats({ config: auth.files["server.conf"] ?? "", storeDir });
  const open: Bus[] = [];
  await using _buses = {
    async [Symbol.asyncDispose]() {
      for (const bus of open) await bus.drain().catch(() => undefined);
    },
  };
  const user = (role: string): GeneratedUser => {
    const u = auth.users.find((x) => x.role === role);
    assert.ok(u, `no user for ${role}`);
    return u;
  };
  const as = async (role: string): Promise<Bus> => {
    const bus = await Bus.connect({
      servers: server.url,
      name: `test/${role}`,
      logger: silentLogger(),
      nkeySeedFile: join(dir.path, user(role).credentialFile),
    });
    open.push(bus);
    return bus;
  };

  const coordinator = await as("coordinator");
  await coordinator.ensureStackbusStreams();
  const runs = await coordinator.kv(BUCKETS.runs);
  await runs.put(keys.run(LAB, "r1"), JSON.stringify({ status: "running" }));
  await coordinator.confirmed(coordinator.serve(wildcards.runStart, Any, Any, () => ({ runId: "r2" }), { queue: QUEUES.coordinator }));
  await coordinator.publishDurable(subjects.runEvent(LAB, "r1"), Any, { type: "run.created" }, { msgID: "e1" });

  const config = await as("config");
  const labs = await config.kv(BUCKETS.labs, { history: 10 });
  // The config service creates the agents' registry (agents may not), with direct gets off.
  await config.kv(BUCKETS.agents);
  const jsm = await config.jsm();
  const registry = await jsm.streams.info(`KV_${BUCKETS.agents}`);
  await jsm.streams.update(`KV_${BUCKETS.agents}`, { ...registry.config, allow_direct: false });
  await labs.put(keys.lab(LAB), JSON.stringify({ localConf: "ADMIN_PASSWORD=secret" }));
  await config.confirmed(config.serve(wildcards.configGet, Any, Any, (_req, subject) => ({ host: subject.split(".").pop(), localrc: "ADMIN_PASSWORD=secret" })));
  await config.confirmed(config.serve(wildcards.configPluginSettings, Any, Any, () => ({ credentials: [] })));
  await config.confirmed(config.serve(wildcards.configApply, Any, Any, () => ({ revision: 2 })));
  await config.confirmed(config.serve(subjects.labList(), Any, Any, () => ({ labs: [LAB] })));

  const fetcher = await as("fetcher");
  const store = await fetcher.objectStore(OBJECT_STORES.plugins);
  await store.putBlob({ name: `demo/${SHA}.tar.gz` }, new TextEncoder().encode("plugin archive"));
  const index = await fetcher.kv(BUCKETS.pluginIndex);
  await index.put("k1", SHA);
  await fetcher.confirmed(fetcher.serve(wildcards.pluginsResolve, Any, Any, () => ({ commit: SHA })));
  await fetcher.confirmed(fetcher.serve(wildcards.pluginsPin, Any, Any, () => ({ plugins: [] })));

  const agent1 = await as("agent-compute1");
  await agent1.confirmed(agent1.serve(subjects.hostCommand(LAB, "compute1"), Any, Any, () => ({ acked: true })));
  const watcher = await as("watcher");
  const operator = await as("operator");

  await t.test("agent - fetches its own config, answers its commands, and reaches the fetcher and the lab list", async () => {
    assert.deepEqual(await agent1.request(subjects.configGet(LAB, "compute1"), Any, {}, Any), { host: "compute1", localrc: "ADMIN_PASSWORD=secret" });
    assert.deepEqual(await coordinator.request(subjects.hostCommand(LAB, "compute1"), Any, { step: "source" }, Any), { acked: true });
    assert.deepEqual(await agent1.request(subjects.pluginsResolve(LAB, "compute1"), Any, { name: "demo" }, Any), { commit: SHA });
    assert.deepEqual(await agent1.request(subjects.labList(), Any, {}, Any), { labs: [LAB] });
  });

  await t.test("coordinator - asks the fetcher to resolve a resumed run's plugins again; an agent and the operator may not", async () => {
    const subject = subjects.pluginsPin(LAB);
    assert.deepEqual(await coordinator.request(subject, Any, { runId: "r1" }, Any), { plugins: [] });
    await assert.rejects(agent1.request(subject, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", subject, user("agent-compute1")));
    await assert.rejects(operator.request(subject, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", subject, user("operator")));
  });

  await t.test("agent - heartbeats, stores its result and log durably, reports progress; the coordinator sees them", async () => {
    const seen: string[] = [];
    await coordinator.confirmed(coordinator.subscribe(wildcards.heartbeats, Any, (_v, subject) => void seen.push(subject)));
    await coordinator.confirmed(coordinator.subscribe(wildcards.runResults, Any, (_v, subject) => void seen.push(subject)));
    await agent1.publishConfirmed(subjects.hostHeartbeat(LAB, "compute1"), Any, { at: 1 });
    await agent1.publishConfirmed(subjects.runProgress(LAB, "r1", "compute1"), Any, { hook: "x" });
    const ack = await agent1.publishDurable(subjects.runResult(LAB, "r1", "compute1"), Any, { status: "ok" }, { msgID: "res-1" });
    assert.equal(ack.stream, STREAMS.runs);
    assert.equal((await agent1.publishDurable(subjects.runLog(LAB, "r1", "compute1"), Any, { lines: ["hi"] })).stream, STREAMS.logs);
    await waitFor("heartbeat and result at the coordinator", () =>
      seen.includes(subjects.hostHeartbeat(LAB, "compute1")) && seen.includes(subjects.runResult(LAB, "r1", "compute1")),
    );
    const stored = await coordinator.readStream(STREAMS.runs, subjects.runAll(LAB, "r1"));
    assert.deepEqual(stored.map((m) => m.subject), [subjects.runEvent(LAB, "r1"), subjects.runResult(LAB, "r1", "compute1")]);
  });

  await t.test("agent - registers its own key in sb_agents and reads plugin archives from the object store", async () => {
    const registry = await agent1.kv(BUCKETS.agents);
    await registry.create(keys.agent(LAB, "compute1"), JSON.stringify({ pid: 1 }));
    assert.equal((await registry.get(keys.agent(LAB, "compute1")))?.json<{ pid: number }>().pid, 1);
    const store = await agent1.objectStore(OBJECT_STORES.plugins);
    assert.equal(new TextDecoder().decode((await store.getBlob(`demo/${SHA}.tar.gz`)) ?? new Uint8Array()), "plugin archive");
  });

  await t.test("agent - may not request another host's config.get (that host's local.conf holds passwords)", async () => {
    const subject = subjects.configGet(LAB, "compute2");
    await assert.rejects(agent1.request(subject, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", subject, user("agent-compute1")));
  });

  await t.test("agent - may ask the fetcher only as itself (the fetcher takes the host from the subject)", async () => {
    const subject = subjects.pluginsResolve(LAB, "compute2");
    await assert.rejects(agent1.request(subject, Any, { name: "demo" }, Any, { timeoutMs: 5_000 }), denied("publish", subject, user("agent-compute1")));
  });

  await t.test("agent - may not ask for the lab's plugin credentials", async () => {
    const subject = subjects.configPluginSettings(LAB);
    await assert.rejects(agent1.request(subject, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", subject, user("agent-compute1")));
  });

  await t.test("agent - may not publish a heartbeat, result, log or progress as another host", async () => {
    const me = user("agent-compute1");
    const hb = subjects.hostHeartbeat(LAB, "compute2");
    await assert.rejects(agent1.publishConfirmed(hb, Any, { at: 1 }), denied("publish", hb, me));
    const result = subjects.runResult(LAB, "r1", "compute2");
    await assert.rejects(agent1.publishDurable(result, Any, { status: "ok" }, { deadlineMs: 10_000 }), denied("publish", result, me));
    const log = subjects.runLog(LAB, "r1", "compute2");
    await assert.rejects(agent1.publishDurable(log, Any, { lines: [] }, { deadlineMs: 10_000 }), denied("publish", log, me));
    const progress = subjects.runProgress(LAB, "r1", "compute2");
    await assert.rejects(agent1.publishConfirmed(progress, Any, {}), denied("publish", progress, me));
  });

  await t.test("agent - may not subscribe to another host's commands, nor to other users' reply inboxes", async () => {
    const me = user("agent-compute1");
    for (const subject of [subjects.hostCommand(LAB, "compute2"), subjects.hostCancel(LAB, "compute2"), wildcards.runResults, "_INBOX.>", `${user("agent-compute2").inboxPrefix}.>`]) {
      await assert.rejects(agent1.confirmed(agent1.subscribe(subject, Any, () => undefined)), denied("subscribe", subject, me));
    }
  });

  await t.test("agent - may not publish phase commands, cancels or run events, nor write another host's registration", async () => {
    const me = user("agent-compute1");
    const cmd = subjects.hostCommand(LAB, "compute2");
    await assert.rejects(agent1.request(cmd, Any, { step: "source" }, Any, { timeoutMs: 5_000 }), denied("publish", cmd, me));
    const ownCmd = subjects.hostCommand(LAB, "compute1");
    await assert.rejects(agent1.request(ownCmd, Any, { step: "source" }, Any, { timeoutMs: 5_000 }), denied("publish", ownCmd, me));
    const cancel = subjects.hostCancel(LAB, "compute2");
    await assert.rejects(agent1.publishConfirmed(cancel, Any, {}), denied("publish", cancel, me));
    const event = subjects.runEvent(LAB, "r1");
    await assert.rejects(agent1.publishDurable(event, Any, { type: "x" }, { deadlineMs: 10_000 }), denied("publish", event, me));
    const registry = await agent1.kv(BUCKETS.agents);
    await assert.rejects(
      registry.put(keys.agent(LAB, "compute2"), "{}").catch((err: unknown) => Promise.reject(agent1.toError(err))),
      denied("publish", `$KV.${BUCKETS.agents}.${keys.agent(LAB, "compute2")}`, me),
    );
  });

  await t.test("agent - may not read the lab definitions bucket (it holds every host's local.conf)", async () => {
    await assert.rejects(agent1.kv(BUCKETS.labs), denied("publish", `$JS.API.STREAM.INFO.KV_${BUCKETS.labs}`, user("agent-compute1")));
  });

  await t.test("watcher - follows the run stream and logs, lists runs and sees live progress", async () => {
    const stored = await watcher.readStream(STREAMS.runs, subjects.runAll(LAB, "r1"));
    assert.ok(stored.length >= 1);
    assert.equal(stored[0]?.subject, subjects.runEvent(LAB, "r1"));
    const abort = new AbortController();
    const followed: string[] = [];
    for await (const m of watcher.followStream(STREAMS.runs, subjects.runAll(LAB, "r1"), { signal: abort.signal })) {
      followed.push(m.subject);
      if (m.pending === 0) abort.abort();
    }
    assert.equal(followed[0], subjects.runEvent(LAB, "r1"));
    const runs = await watcher.kv(BUCKETS.runs);
    const runKeys: string[] = [];
    for await (const k of await runs.keys(`${LAB}.>`)) runKeys.push(k);
    assert.deepEqual(runKeys, [keys.run(LAB, "r1")]);
    assert.equal((await runs.get(keys.run(LAB, "r1")))?.json<{ status: string }>().status, "running");
    const progress: string[] = [];
    await watcher.confirmed(watcher.subscribe(subjects.runProgressAll(LAB, "r1"), Any, (_v, s) => void progress.push(s)));
    await agent1.publishConfirmed(subjects.runProgress(LAB, "r1", "compute1"), Any, { hook: "y" });
    await waitFor("progress at the watcher", () => progress.length > 0);
  });

  await t.test("watcher - may not publish anything on sb.>, start or cancel a run, or write a bucket", async () => {
    const me = user("watcher");
    for (const subject of [
      subjects.hostHeartbeat(LAB, "compute1"),
      subjects.runProgress(LAB, "r1", "compute1"),
      subjects.configRevision(LAB),
      "sb.anything",
    ]) {
      await assert.rejects(watcher.publishConfirmed(subject, Any, {}), denied("publish", subject, me));
    }
    for (const subject of [subjects.runStart(LAB), subjects.runCancel(LAB), subjects.labList(), subjects.configShow(LAB), subjects.configGet(LAB, "compute1")]) {
      await assert.rejects(watcher.request(subject, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", subject, me));
    }
    const event = subjects.runEvent(LAB, "r1");
    await assert.rejects(watcher.publishDurable(event, Any, {}, { deadlineMs: 10_000 }), denied("publish", event, me));
    const runs = await watcher.kv(BUCKETS.runs);
    await assert.rejects(
      runs.put(keys.run(LAB, "r9"), "{}").catch((err: unknown) => Promise.reject(watcher.toError(err))),
      denied("publish", `$KV.${BUCKETS.runs}.${keys.run(LAB, "r9")}`, me),
    );
    await assert.rejects(watcher.kv(BUCKETS.labs), denied("publish", `$JS.API.STREAM.INFO.KV_${BUCKETS.labs}`, me));
  });

  await t.test("operator - applies the lab and starts runs, but may not send phase commands or read a host's config", async () => {
    const me = user("operator");
    assert.deepEqual(await operator.request(subjects.configApply(LAB), Any, {}, Any), { revision: 2 });
    assert.deepEqual(await operator.request(subjects.runStart(LAB), Any, { kind: "stack" }, Any), { runId: "r2" });
    const cmd = subjects.hostCommand(LAB, "compute1");
    await assert.rejects(operator.request(cmd, Any, { step: "source" }, Any, { timeoutMs: 5_000 }), denied("publish", cmd, me));
    const cancel = subjects.hostCancel(LAB, "compute1");
    await assert.rejects(operator.publishConfirmed(cancel, Any, {}), denied("publish", cancel, me));
    const get = subjects.configGet(LAB, "compute1");
    await assert.rejects(operator.request(get, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", get, me));
    const result = subjects.runResult(LAB, "r1", "compute1");
    await assert.rejects(operator.publishDurable(result, Any, {}, { deadlineMs: 10_000 }), denied("publish", result, me));
    const event = subjects.runEvent(LAB, "r1");
    await assert.rejects(operator.publishDurable(event, Any, {}, { deadlineMs: 10_000 }), denied("publish", event, me));
  });

  await t.test("coordinator - may request any host's config; config service and fetcher exchange plugin credentials only between them", async () => {
    assert.deepEqual(await coordinator.request(subjects.configGet(LAB, "compute2"), Any, {}, Any), { host: "compute2", localrc: "ADMIN_PASSWORD=secret" });
    assert.deepEqual(await fetcher.request(subjects.configPluginSettings(LAB), Any, {}, Any), { credentials: [] });
    const get = subjects.configGet(LAB, "compute1");
    await assert.rejects(fetcher.request(get, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", get, user("fetcher")));
    const plugins = subjects.configPluginSettings(LAB);
    await assert.rejects(coordinator.request(plugins, Any, {}, Any, { timeoutMs: 5_000 }), denied("publish", plugins, user("coordinator")));
  });

  await t.test("config service - keeps lab revisions in its bucket, which no other role can write", async () => {
    const labs = await config.kv(BUCKETS.labs);
    await labs.put(keys.lab(LAB), JSON.stringify({ rev: 2 }));
    assert.equal((await labs.get(keys.lab(LAB)))?.json<{ rev: number }>().rev, 2);
    await assert.rejects(
      coordinator.kv(BUCKETS.labs),
      denied("publish", `$JS.API.STREAM.INFO.KV_${BUCKETS.labs}`, user("coordinator")),
    );
  });

  await t.test("refuses an unknown nkey at connect with PERMISSION_DENIED", async () => {
    const stranger = createUser();
    const seedFile = join(dir.path, "stranger.nk");
    writeFileSync(seedFile, new TextDecoder().decode(stranger.getSeed()), { mode: 0o600 });
    await assert.rejects(Bus.connect({ servers: server.url, name: "x", logger: silentLogger(), nkeySeedFile: seedFile }), (err: unknown) => {
      assert.ok(err instanceof StackbusError);
      assert.equal(err.code, ErrorCode.PermissionDenied);
      assert.ok(err.message.includes(stranger.getPublicKey()), err.message);
      assert.match(err.message, /refused the credentials/);
      return true;
    });
  });
});
