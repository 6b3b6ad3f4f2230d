import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { startNats, waitFor } from "@stackbus/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Bus } from "./bus.js";
import { NO_REPLY } from "./rpc.js";
import { casUpdate } from "./cas.js";
import { pino } from "pino";

const Ping = z.object({ n: z.number().int() });
const Pong = z.object({ doubled: z.number().int() });

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe("bus - typed NATS against a real nats-server", () => {
  it("request/serve round-trips a typed value", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    await using b = await Bus.connect({ servers: server.url, name: "b", logger });
    a.serve("t.double", Ping, Pong, (req) => ({ doubled: req.n * 2 }));
    await a.flush();
    assert.deepEqual(await b.request("t.double", Ping, { n: 21 }, Pong), { doubled: 42 });
    await a.drain();
    await b.drain();
  });

  it("answers a malformed request with a coded error and keeps serving", async () => {
    await using server = await startNats();
    const { logger, lines } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    const rawClient = await connect({ servers: server.url });
    a.serve("t.strict", Ping, Pong, (req) => ({ doubled: req.n * 2 }));
    await a.flush();
    for (const raw of ["not json", JSON.stringify({ n: "x" }), JSON.stringify({}), ""]) {
      const msg = await rawClient.request("t.strict", new TextEncoder().encode(raw), { timeout: 2000 });
      const reply = JSON.parse(new TextDecoder().decode(msg.data));
      assert.equal(reply.ok, false, raw);
      assert.equal(reply.error.code, ErrorCode.BadMessage, raw);
      assert.match(reply.error.message, /t\.strict/);
    }
    assert.ok(lines.some((l) => l["code"] === ErrorCode.BadMessage && l["subject"] === "t.strict"));
    assert.deepEqual(await a.request("t.strict", Ping, { n: 2 }, Pong), { doubled: 4 });
    await rawClient.close();
    await a.drain();
  });

  it("turns a handler's coded error into a typed error for the caller", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    a.serve("t.fail", Ping, Pong, () => {
      throw new StackbusError(ErrorCode.NotFound, "no such thing", { what: "x" });
    });
    await a.flush();
    await assert.rejects(a.request("t.fail", Ping, { n: 1 }, Pong), (err: unknown) => {
      assert.ok(err instanceof StackbusError);
      assert.equal(err.code, ErrorCode.NotFound);
      assert.deepEqual(err.data, { what: "x" });
      return true;
    });
    await a.drain();
  });

  it("sends no reply when the handler answered another way (NO_REPLY), and keeps serving", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    a.serve("t.maybe", Ping, Pong, (req) => (req.n < 0 ? NO_REPLY : { doubled: req.n * 2 }));
    await a.flush();
    await assert.rejects(a.request("t.maybe", Ping, { n: -1 }, Pong, { timeoutMs: 300 }), (err: unknown) => err instanceof StackbusError && err.code === ErrorCode.Timeout);
    assert.deepEqual(await a.request("t.maybe", Ping, { n: 3 }, Pong), { doubled: 6 });
  });

  it("refuses to send a value that does not match its schema", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    assert.throws(() => a.publish("t.event", Ping, { n: 1.5 }), (err: unknown) => (err as StackbusError).code === ErrorCode.BadMessage);
    await a.drain();
  });

  it("logs and skips a malformed event, then handles the next good one", async () => {
    await using server = await startNats();
    const { logger, lines } = capturingLogger();
    // The transport is injected; this one keeps a handle on the raw connection to send a malformed event.
    let raw: NatsConnection | undefined;
    await using a = await Bus.connect({ servers: server.url, name: "a", logger, connect: async (options) => (raw = await connect(options)) });
    const got: number[] = [];
    a.subscribe("t.events", Ping, (v) => void got.push(v.n));
    await a.flush();
    assert.ok(raw, "the bus connected through the injected transport");
    raw.publish("t.events", new TextEncoder().encode("{bad"));
    a.publish("t.events", Ping, { n: 7 });
    await waitFor("the good event", () => got.length === 1);
    assert.deepEqual(got, [7]);
    assert.ok(lines.some((l) => l["code"] === ErrorCode.BadMessage));
    await a.drain();
  });

  it("reports nothing listening as UNAVAILABLE", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    await assert.rejects(a.request("t.nobody", Ping, { n: 1 }, Pong, { timeoutMs: 1000 }), (err: unknown) => (err as StackbusError).code === ErrorCode.Unavailable);
    await a.drain();
  });

  it("creates streams, buckets and object stores idempotently and reads a stream back", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    await a.ensureStackbusStreams();
    await a.ensureStackbusStreams();
    const kv = await a.kv("t_bucket");
    await kv.put("k", "v1");
    const again = await a.kv("t_bucket");
    assert.equal((await again.get("k"))?.string(), "v1");
    const os = await a.objectStore("t_objects");
    await os.putBlob({ name: "x/y" }, new TextEncoder().encode("hello"));
    assert.equal(new TextDecoder().decode((await (await a.objectStore("t_objects")).getBlob("x/y")) ?? new Uint8Array()), "hello");
    for (let i = 0; i < 5; i++) await a.publishDurable("sb.t.run.r1.event", Ping, { n: i }, { msgID: `m${i}` });
    await a.publishDurable("sb.t.run.r1.event", Ping, { n: 4 }, { msgID: "m4" });
    const stored = await a.readStream("SB_RUNS", "sb.t.run.r1.>");
    assert.deepEqual(stored.map((m) => JSON.parse(new TextDecoder().decode(m.data)).n), [0, 1, 2, 3, 4]);
    assert.deepEqual(await a.readStream("SB_RUNS", "sb.t.run.none.>"), []);
    await a.drain();
  });

  it("casUpdate - racing writers each land once, and a decision to leave the key writes nothing", async () => {
    await using server = await startNats();
    const { logger } = capturingLogger();
    await using a = await Bus.connect({ servers: server.url, name: "a", logger });
    await using b = await Bus.connect({ servers: server.url, name: "b", logger });
    const kvA = await a.kv("t_cas");
    const kvB = await b.kv("t_cas");
    let decisions = 0;
    const increment = (kv: typeof kvA) =>
      casUpdate(kv, "counter", (current) => {
        decisions++;
        const n = current ? Number(current.string()) + 1 : 1;
        return { value: String(n), result: n };
      });
    const results = await Promise.all([...Array(10).keys()].map((i) => increment(i % 2 === 0 ? kvA : kvB)));
    assert.deepEqual(results.map((r) => r.result).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.ok(decisions > 10, "a writer that lost the race read and decided again");
    assert.equal((await kvA.get("counter"))?.string(), "10");
    const kept = await casUpdate(kvA, "counter", (current) => ({ unchanged: current?.string() }));
    assert.deepEqual(kept, { result: "10", revision: undefined });
    await kvA.delete("counter");
    const recreated = await casUpdate(kvA, "counter", (current) => ({ value: "fresh", result: current }));
    assert.equal(recreated.result, null, "a deleted key reads as absent");
    assert.equal((await kvA.get("counter"))?.string(), "fresh");
    await assert.rejects(
      casUpdate(kvA, "counter", async (current) => {
        await kvB.put("counter", `${current?.string()}-moved`);
        return { value: "never", result: 0 };
      }, { attempts: 3 }),
      (err: unknown) => (err as StackbusError).code === ErrorCode.Conflict,
    );
    await a.drain();
    await b.drain();
  });

  it("fails fast with the URL and a hint when no server is there", async () => {
    const { logger } = capturingLogger();
    await assert.rejects(Bus.connect({ servers: "nats://127.0.0.1:1", name: "x", logger }), (err: unknown) => {
      assert.equal((err as StackbusError).code, ErrorCode.NatsUnreachable);
      assert.deepEqual((err as StackbusError).data, { servers: ["nats://127.0.0.1:1"] });
      assert.match((err as Error).message, /127\.0\.0\.1:1/);
      assert.match((err as Error).message, /stackbus up/);
      return true;
    });
  });
});
