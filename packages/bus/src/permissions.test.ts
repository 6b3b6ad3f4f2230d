import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { pino } from "pino";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { startNats, waitFor, type NatsServer } from "@stackbus/testkit";
import { Bus } from "./bus.js";
import { PermissionDeniedError } from "./errors.js";

const Ping = z.object({ n: z.number().int() });

// `alice` may use t.ok.> and her own inbox; `svc` answers t.svc.>; `deaf` may not receive replies.
const config = `
authorization {
  users: [
    { user: alice, password: alice-pw, permissions: {
        publish: { allow: ["t.ok.>", "t.svc.>", "$JS.API.INFO", "$JS.API.STREAM.INFO.T_OK", "$JS.API.STREAM.CREATE.T_OK"] },
        subscribe: { allow: ["t.ok.>", "_INBOX.alice.>"] } } }
    { user: svc, password: svc-pw, permissions: {
        publish: { allow: ["$JS.API.>", "t.>"] },
        subscribe: { allow: ["t.svc.>", "_INBOX.svc.>"] },
        allow_responses: true } }
    { user: deaf, password: deaf-pw, permissions: {
        publish: { allow: ["t.svc.>"] },
        subscribe: { allow: ["t.ok.>"] } } }
  ]
}
`;

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

function isDenied(operation: string, subject: string, user: string) {
  return (err: unknown) => {
    assert.ok(err instanceof PermissionDeniedError, `expected PermissionDeniedError, got ${String(err)}`);
    assert.equal(err.code, ErrorCode.PermissionDenied);
    assert.equal(err.operation, operation);
    assert.equal(err.subject, subject);
    assert.equal(err.user, user);
    assert.ok(err.message.includes(JSON.stringify(subject)), err.message);
    assert.ok(err.message.includes(JSON.stringify(user)), err.message);
    return true;
  };
}

/** A server with the users above, and `svc` answering t.svc.double, for one test; disposed with it. */
async function startWorld(): Promise<{ server: NatsServer; svc: Bus } & AsyncDisposable> {
  const server = await startNats({ config });
  try {
    const svc = await Bus.connect({ servers: server.url, name: "svc", logger: capturingLogger().logger, user: "svc", pass: "svc-pw" });
    svc.serve("t.svc.double", Ping, Ping, (req) => ({ n: req.n * 2 }));
    await svc.flush();
    await svc.ensureStream({ name: "T_DENY", subjects: ["t.deny.>"] });
    return {
      server,
      svc,
      async [Symbol.asyncDispose]() {
        await svc.drain();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

describe("bus - permission denials are clear errors, not timeouts", () => {
  it("answers over the user's own inbox, which the client names after its user", async () => {
    await using world = await startWorld();
    const { server } = world;
    await using alice = await Bus.connect({ servers: server.url, name: "alice", logger: capturingLogger().logger, user: "alice", pass: "alice-pw" });
    assert.equal(alice.inboxPrefix, "_INBOX.alice");
    assert.deepEqual(await alice.request("t.svc.double", Ping, { n: 4 }, Ping), { n: 8 });
    await alice.drain();
  });

  it("a request to a forbidden subject fails at once with PERMISSION_DENIED naming subject and user", async () => {
    await using world = await startWorld();
    const { server } = world;
    await using alice = await Bus.connect({ servers: server.url, name: "alice", logger: capturingLogger().logger, user: "alice", pass: "alice-pw" });
    const started = Date.now();
    await assert.rejects(alice.request("t.secret.get", Ping, { n: 1 }, Ping, { timeoutMs: 5_000 }), isDenied("publish", "t.secret.get", "alice"));
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started}ms: a denial must not wait for the timeout`);
    assert.deepEqual(await alice.request("t.svc.double", Ping, { n: 1 }, Ping), { n: 2 }, "the connection stays usable");
    await alice.drain();
  });

  it("a durable publish to a forbidden subject fails at once instead of retrying", async () => {
    await using world = await startWorld();
    const { server } = world;
    await using alice = await Bus.connect({ servers: server.url, name: "alice", logger: capturingLogger().logger, user: "alice", pass: "alice-pw" });
    const started = Date.now();
    await assert.rejects(alice.publishDurable("t.deny.x", Ping, { n: 1 }, { deadlineMs: 10_000 }), isDenied("publish", "t.deny.x", "alice"));
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started}ms`);
    await alice.drain();
  });

  it("a plain publish that is refused is logged, reported to listeners and rejected by publishConfirmed", async () => {
    await using world = await startWorld();
    const { server } = world;
    const { logger, lines } = capturingLogger();
    await using alice = await Bus.connect({ servers: server.url, name: "alice", logger, user: "alice", pass: "alice-pw" });
    const heard: PermissionDeniedError[] = [];
    alice.onPermissionDenied((e) => heard.push(e));
    alice.publish("t.other.event", Ping, { n: 1 });
    await waitFor("the refusal to be reported", () => heard.length === 1);
    assert.equal(heard[0]?.subject, "t.other.event");
    assert.ok(lines.some((l) => l["code"] === ErrorCode.PermissionDenied && l["subject"] === "t.other.event" && l["user"] === "alice"));
    await assert.rejects(alice.publishConfirmed("t.other.event", Ping, { n: 2 }), isDenied("publish", "t.other.event", "alice"));
    await alice.publishConfirmed("t.ok.event", Ping, { n: 3 });
    assert.equal(alice.closed, false);
    await alice.drain();
  });

  it("a forbidden subscription or service is refused and confirmed() says so; an allowed one confirms", async () => {
    await using world = await startWorld();
    const { server, svc } = world;
    await using alice = await Bus.connect({ servers: server.url, name: "alice", logger: capturingLogger().logger, user: "alice", pass: "alice-pw" });
    await assert.rejects(alice.confirmed(alice.subscribe("t.svc.>", Ping, () => undefined)), isDenied("subscribe", "t.svc.>", "alice"));
    await assert.rejects(alice.confirmed(alice.serve("t.other.q", Ping, Ping, (r) => r)), isDenied("subscribe", "t.other.q", "alice"));
    const got: number[] = [];
    await alice.confirmed(alice.subscribe("t.ok.events", Ping, (v) => void got.push(v.n)));
    await svc.publishConfirmed("t.ok.events", Ping, { n: 5 });
    await waitFor("the allowed event", () => got.length === 1);
    await alice.drain();
  });

  it("opening a bucket the user may not use is PERMISSION_DENIED naming the JetStream API subject", async () => {
    await using world = await startWorld();
    const { server } = world;
    await using alice = await Bus.connect({ servers: server.url, name: "alice", logger: capturingLogger().logger, user: "alice", pass: "alice-pw" });
    await assert.rejects(alice.kv("t_secret"), isDenied("publish", "$JS.API.STREAM.INFO.KV_t_secret", "alice"));
    await alice.drain();
  });

  it("a user who may not receive replies is told its inbox is not allowed", async () => {
    await using world = await startWorld();
    const { server } = world;
    await using deaf = await Bus.connect({ servers: server.url, name: "deaf", logger: capturingLogger().logger, user: "deaf", pass: "deaf-pw" });
    await assert.rejects(deaf.request("t.svc.double", Ping, { n: 1 }, Ping, { timeoutMs: 5_000 }), (err: unknown) => {
      assert.ok(err instanceof PermissionDeniedError);
      assert.equal(err.operation, "subscribe");
      assert.match(err.message, /reply inbox/);
      assert.match(err.message, /_INBOX\.deaf\.>/);
      return true;
    });
    await deaf.drain();
  });

  it("refuses bad credentials at connect with PERMISSION_DENIED naming the user", async () => {
    await using world = await startWorld();
    const { server } = world;
    for (const waitForServer of [false, true]) {
      await assert.rejects(
        Bus.connect({ servers: server.url, name: "x", logger: capturingLogger().logger, user: "alice", pass: "wrong", waitForServer }),
        (err: unknown) => {
          assert.ok(err instanceof PermissionDeniedError);
          assert.equal(err.operation, "connect");
          assert.match(err.message, /refused the credentials of NATS user "alice"/);
          assert.ok(err.message.includes(server.url.replace("nats://", "")), err.message);
          return true;
        },
      );
    }
    await assert.rejects(Bus.connect({ servers: server.url, name: "x", logger: capturingLogger().logger }), (err: unknown) => {
      assert.equal((err as StackbusError).code, ErrorCode.PermissionDenied);
      assert.match((err as Error).message, /none were given/);
      return true;
    });
  });
});
