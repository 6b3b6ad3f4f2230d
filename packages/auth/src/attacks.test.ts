import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { z } from "zod";
import { Bus, PermissionDeniedError, silentLogger, type Msg } from "@stackbus/bus";
import {
  BUCKETS,
  CancelRequestSchema,
  ErrorCode,
  OBJECT_STORES,
  PhaseCommandSchema,
  PlanRequestSchema,
  STREAMS,
  keys,
  subjects,
  type PhaseCommand,
} from "@stackbus/protocol";
import { startNats, tempDir, type NatsServer } from "@stackbus/testkit";
import { generateAuth, writeAuth, type GeneratedAuth } from "./generate.js";

const LAB = "lab1";
const HOSTS = ["a", "b"];
const JS = "$JS.API";
const Any = z.record(z.string(), z.unknown());
const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A command for host b that the coordinator never sent: what attack 1 stores and redirects. */
const FORGED: PhaseCommand = {
  lab: LAB,
  runId: "rforged",
  kind: "unstack",
  attempt: 1,
  step: "unstack",
  configRevision: 1,
  timeoutMs: 60_000,
  facts: {},
};

/** The generated permissions (nkeys) on a real nats-server, one connection per role. */
class Fixture {
  dir = tempDir("sb-attacks-");
  auth!: GeneratedAuth;
  server!: NatsServer;
  readonly open: Bus[] = [];

  async start(): Promise<void> {
    const storeDir = join(this.dir.path, "store");
    mkdirSync(storeDir);
    this.auth = await generateAuth({ lab: LAB, hosts: HOSTS, mode: "nkey", storeDir });
    writeAuth(this.dir.path, this.auth);
    this.server = await startNats({ config: this.auth.files["server.conf"] ?? "", storeDir });
  }

  user(role: string) {
    const u = this.auth.users.find((x) => x.role === role);
    assert.ok(u, `no user for ${role}`);
    return u;
  }

  async as(role: string): Promise<Bus> {
    const bus = await Bus.connect({
      servers: this.server.url,
      name: `attack/${role}`,
      logger: silentLogger(),
      nkeySeedFile: join(this.dir.path, this.user(role).credentialFile),
    });
    this.open.push(bus);
    return bus;
  }

  async stop(): Promise<void> {
    for (const bus of this.open) await bus.drain().catch(() => undefined);
    await this.server?.stop();
    this.dir.remove();
  }
}

/** A JetStream API call as a raw request, a refusal typed as PermissionDeniedError. */
async function jsApi(bus: Bus, subject: string, body: unknown): Promise<Record<string, unknown>> {
  try {
    const msg = await bus.nc.request(subject, enc(body), { timeout: 5_000 });
    return JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
  } catch (err) {
    throw bus.toError(err);
  }
}

function deniedPublish(subject: string) {
  return (err: unknown) => {
    assert.ok(err instanceof PermissionDeniedError, `expected PermissionDeniedError, got ${String(err)}`);
    assert.equal(err.operation, "publish");
    assert.equal(err.subject, subject);
    return true;
  };
}

/** Publishes with a reply subject of the attacker's choosing; resolves with the refusal, if the server refused it. */
async function publishWithReply(bus: Bus, subject: string, body: unknown, reply: string): Promise<PermissionDeniedError | undefined> {
  let refused: PermissionDeniedError | undefined;
  const off = bus.onPermissionDenied((e) => {
    if (e.subject === subject) refused = e;
  });
  bus.nc.publish(subject, body === undefined ? new Uint8Array() : enc(body), { reply });
  await bus.nc.flush();
  await new Promise((r) => setTimeout(r, 50));
  off();
  return refused;
}

describe("attacks on the permissions - before any service runs, nobody but a service can create a stream or bucket", () => {
  const f = new Fixture();
  before(() => f.start());
  after(() => f.stop());

  it("agent - may not create KV_sb_agents capturing every reply inbox (issue 17, attack 3), nor any other stream", async () => {
    const agent = await f.as("agent-a");
    const stream = `KV_${BUCKETS.agents}`;
    const create = `${JS}.STREAM.CREATE.${stream}`;
    await assert.rejects(jsApi(agent, create, { name: stream, subjects: [`$KV.${BUCKETS.agents}.>`, "_INBOX.>"] }), deniedPublish(create));
    for (const name of [STREAMS.runs, "CAPTURE"]) {
      await assert.rejects(jsApi(agent, `${JS}.STREAM.CREATE.${name}`, { name, subjects: ["_INBOX.>"] }), deniedPublish(`${JS}.STREAM.CREATE.${name}`));
    }
    // What the agent's start-up meets when the config service has not created the registry yet: a refusal naming it.
    await assert.rejects(agent.kv(BUCKETS.agents), (err: unknown) => {
      assert.ok(err instanceof PermissionDeniedError);
      assert.equal(err.code, ErrorCode.PermissionDenied);
      assert.equal(err.subject, create);
      assert.match(err.message, new RegExp(`may not publish to "\\$JS\\.API\\.STREAM\\.CREATE\\.${stream}"`));
      return true;
    });
    await assert.rejects(agent.objectStore(OBJECT_STORES.plugins), deniedPublish(`${JS}.STREAM.CREATE.OBJ_${OBJECT_STORES.plugins}`));
  });

  it("watcher and operator - may not create a stream or bucket either", async () => {
    for (const role of ["watcher", "operator"]) {
      const bus = await f.as(role);
      const create = `${JS}.STREAM.CREATE.KV_${BUCKETS.runs}`;
      await assert.rejects(jsApi(bus, create, { name: `KV_${BUCKETS.runs}`, subjects: ["_INBOX.>"] }), deniedPublish(create), role);
      await assert.rejects(bus.kv(BUCKETS.runs), deniedPublish(create), role);
    }
  });

  it("services - each creates its own streams and buckets (coordinator, config, fetcher), and no other's", async () => {
    const coordinator = await f.as("coordinator");
    await coordinator.ensureStackbusStreams();
    await coordinator.kv(BUCKETS.runs);
    const config = await f.as("config");
    await config.kv(BUCKETS.labs);
    await config.kv(BUCKETS.agents);
    const fetcher = await f.as("fetcher");
    await fetcher.objectStore(OBJECT_STORES.plugins);
    await fetcher.kv(BUCKETS.pluginIndex);
    const create = `${JS}.STREAM.CREATE.KV_${BUCKETS.labs}`;
    await assert.rejects(jsApi(fetcher, create, { name: `KV_${BUCKETS.labs}`, subjects: ["_INBOX.>"] }), deniedPublish(create));
  });
});

describe("attacks on the permissions - with every stream in place", () => {
  const f = new Fixture();
  let agentA: Bus;
  let agentB: Bus;
  let watcher: Bus;
  /** Everything that reaches host b's command, cancel and plan subjects. */
  const atB: Msg[] = [];

  before(async () => {
    await f.start();
    const coordinator = await f.as("coordinator");
    await coordinator.ensureStackbusStreams();
    await coordinator.kv(BUCKETS.runs);
    await coordinator.publishDurable(subjects.runEvent(LAB, "r1"), Any, { lab: LAB, runId: "r1", type: "run.attempt", reason: "start" });
    const config = await f.as("config");
    // What the config service does at start: the registry, with direct gets off.
    await config.kv(BUCKETS.agents);
    const jsm = await config.jsm();
    const info = await jsm.streams.info(`KV_${BUCKETS.agents}`);
    await jsm.streams.update(`KV_${BUCKETS.agents}`, { ...info.config, allow_direct: false });
    const fetcher = await f.as("fetcher");
    const store = await fetcher.objectStore(OBJECT_STORES.plugins);
    await store.putBlob({ name: `demo/${"a".repeat(40)}.tar.gz` }, enc(FORGED));
    agentA = await f.as("agent-a");
    agentB = await f.as("agent-b");
    watcher = await f.as("watcher");
    for (const subject of [subjects.hostCommand(LAB, "b"), subjects.hostCancel(LAB, "b"), subjects.hostPlan(LAB, "b")]) {
      agentB.nc.subscribe(subject, { callback: (_err, msg) => void atB.push(msg) });
    }
    await agentB.nc.flush();
  });
  after(() => f.stop());

  it("agent - stores a command in its own registry key, but cannot have it delivered to host b (issue 17, attack 1): no consumer, no direct get of the registry", async () => {
    const registry = await agentA.kv(BUCKETS.agents);
    await registry.put(keys.agent(LAB, "a"), JSON.stringify(FORGED));
    assert.equal((await registry.get(keys.agent(LAB, "a")))?.string(), JSON.stringify(FORGED), "the agent reads its own key back");
    const stream = `KV_${BUCKETS.agents}`;
    const cmdB = subjects.hostCommand(LAB, "b");
    const consumer = { deliver_subject: cmdB, deliver_policy: "last_per_subject", ack_policy: "none", filter_subject: `$KV.${BUCKETS.agents}.${LAB}.a` };
    for (const subject of [
      `${JS}.CONSUMER.CREATE.${stream}`,
      `${JS}.CONSUMER.CREATE.${stream}.evil.$KV.${BUCKETS.agents}.${LAB}.a`,
      `${JS}.CONSUMER.CREATE.${stream}.evil.$KV.${BUCKETS.agents}.>`,
      `${JS}.CONSUMER.DURABLE.CREATE.${stream}.evil`,
    ]) {
      await assert.rejects(jsApi(agentA, subject, { stream_name: stream, config: { ...consumer, name: "evil", durable_name: "evil" } }), deniedPublish(subject));
    }
    for (const [subject, body] of [
      [`${JS}.DIRECT.GET.${stream}.$KV.${BUCKETS.agents}.${LAB}.a`, undefined],
      [`${JS}.DIRECT.GET.${stream}`, { last_by_subj: `$KV.${BUCKETS.agents}.${LAB}.a` }],
    ] as const) {
      const refused = await publishWithReply(agentA, subject, body, cmdB);
      assert.ok(refused, `${subject} was not refused`);
    }
    // The stream-message get is allowed (the agent reads its key with it); its reply is an envelope, not the stored command.
    assert.equal(await publishWithReply(agentA, `${JS}.STREAM.MSG.GET.${stream}`, { last_by_subj: `$KV.${BUCKETS.agents}.${LAB}.a` }, cmdB), undefined);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(atB.length >= 1, "the envelope did reach b's command subject");
    for (const msg of atB) {
      const value = JSON.parse(new TextDecoder().decode(msg.data)) as unknown;
      assert.equal(PhaseCommandSchema.safeParse(value).success, false, `b received a valid command: ${JSON.stringify(value)}`);
      assert.equal(CancelRequestSchema.safeParse(value).success, false);
      assert.equal(PlanRequestSchema.safeParse(value).success, false);
    }
    atB.length = 0;
  });

  it("agent - may consume only the plugin archives' chunks, written by the fetcher, not their records nor any other stream", async () => {
    const obj = `OBJ_${OBJECT_STORES.plugins}`;
    const store = await agentA.objectStore(OBJECT_STORES.plugins);
    assert.deepEqual(JSON.parse(new TextDecoder().decode((await store.getBlob(`demo/${"a".repeat(40)}.tar.gz`)) ?? new Uint8Array())), FORGED);
    for (const subject of [
      `${JS}.CONSUMER.CREATE.${obj}.evil.$O.${OBJECT_STORES.plugins}.M.>`,
      `${JS}.CONSUMER.CREATE.${obj}`,
      `${JS}.CONSUMER.CREATE.${STREAMS.runs}.evil.sb.${LAB}.run.>`,
      `${JS}.CONSUMER.CREATE.${STREAMS.logs}.evil.sb.${LAB}.log.>`,
      `${JS}.STREAM.UPDATE.${obj}`,
      `${JS}.STREAM.DELETE.KV_${BUCKETS.agents}`,
      `${JS}.STREAM.PURGE.KV_${BUCKETS.agents}`,
    ]) {
      await assert.rejects(jsApi(agentA, subject, { stream_name: obj, config: { name: "evil" } }), deniedPublish(subject));
    }
  });

  it("watcher - reads runs only through consumers: no direct get of the run stream, no stream it does not follow, no durable", async () => {
    const cancelB = subjects.hostCancel(LAB, "b");
    for (const subject of [`${JS}.DIRECT.GET.${STREAMS.runs}`, `${JS}.STREAM.MSG.GET.${STREAMS.runs}`, `${JS}.DIRECT.GET.${STREAMS.logs}`]) {
      assert.ok(await publishWithReply(watcher, subject, { last_by_subj: `sb.${LAB}.run.r1.event` }, cancelB), `${subject} was not refused`);
    }
    for (const subject of [
      `${JS}.CONSUMER.CREATE.${STREAMS.runs}`,
      `${JS}.CONSUMER.DURABLE.CREATE.${STREAMS.runs}.evil`,
      `${JS}.CONSUMER.CREATE.${STREAMS.runs}.evil.sb.other-lab.run.>`,
      `${JS}.CONSUMER.CREATE.KV_${BUCKETS.agents}.evil.$KV.${BUCKETS.agents}.>`,
      `${JS}.CONSUMER.CREATE.KV_${BUCKETS.labs}.evil.$KV.${BUCKETS.labs}.>`,
    ]) {
      await assert.rejects(jsApi(watcher, subject, { stream_name: STREAMS.runs, config: { name: "evil", deliver_subject: cancelB } }), deniedPublish(subject));
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(atB.map((m) => m.subject), [], "nothing reached host b");
  });
});
