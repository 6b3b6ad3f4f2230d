import { readFileSync } from "node:fs";
import { fromSeed } from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import {
  credsAuthenticator,
  nkeyAuthenticator,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/nats-core";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Objm, setSha256Backend, type ObjectStore } from "@nats-io/obj";
import {
  ErrorCode,
  INBOX_ROOT,
  StackbusError,
  inboxPrefix as inboxPrefixOf,
  isValidName,
  toStackbusError,
  replySchema,
  STREAMS,
  wildcards,
  type WireError,
} from "@stackbus/protocol";
import type { z } from "zod";
import { decode, encode } from "./codec.js";
import { findViolation, PermissionDeniedError, type Violation } from "./errors.js";
import type { Logger } from "./logger.js";

// Object-store digests are computed by Node's crypto rather than the client's
// pure-JS default, which hashed a plugin archive several times slower than it arrived.
setSha256Backend("native");

/** The object store's `SHA-256=<base64url>` digest as stackbus's `sha256-<hex>`. */
export function natsDigestToHex(digest: string): string {
  const b64 = digest.replace(/^SHA-256=/, "").replace(/=+$/, "");
  return `sha256-${Buffer.from(b64, "base64url").toString("hex")}`;
}

/** The default bus URL: `$NATS_URL`, else the local server. */
export function defaultNatsUrl(): string {
  return process.env["NATS_URL"] ?? "nats://127.0.0.1:4222";
}

export interface TlsSettings {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export interface BusOptions {
  /** One URL, a comma-separated list, or a list. @default defaultNatsUrl() */
  servers?: string | string[] | undefined;
  /** Client name shown by the server (`stackbus-agent/compute1`). */
  name: string;
  logger: Logger;
  user?: string | undefined;
  pass?: string | undefined;
  token?: string | undefined;
  /** Path of an nkey seed file. */
  nkeySeedFile?: string | undefined;
  /** Path of a `.creds` file. */
  credsFile?: string | undefined;
  tls?: TlsSettings | undefined;
  /**
   * Keep trying the first connection instead of failing at once (services do; the CLI
   * does not). @default false
   */
  waitForServer?: boolean | undefined;
  /** JetStream replicas for the streams, buckets and object store this client creates. @default 1 */
  replicas?: number | undefined;
  /**
   * Prefix for reply inboxes, for users restricted to their own inbox.
   * @default `_INBOX.<identity>` when the client has a user name or nkey that is a safe token
   * (see `inboxPrefix` in @stackbus/protocol), else `_INBOX`
   */
  inboxPrefix?: string | undefined;
}

export interface RequestOptions {
  /** @default 5000 */
  timeoutMs?: number;
}

export interface ServeOptions {
  queue?: string;
}

/** A handled request: the parsed value and the concrete subject it came on. */
export type Handler<Req, Res> = (req: Req, subject: string, msg: Msg) => Promise<Res> | Res;

/**
 * Typed access to NATS for every stackbus process. Every message is checked against its
 * zod schema when sent and parsed again when received; a message that fails is logged
 * (events) or answered with a coded error (requests), never a crash.
 */
export class Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly replicas: number;
  /** Who this client is to the server: its user name or nkey public key, if it has one. */
  readonly identity: string | undefined;
  /** The prefix of this client's reply inboxes. */
  readonly inboxPrefix: string;
  #jsm: JetStreamManager | undefined;
  #kvm: Kvm;
  #objm: Objm;
  #closed = false;
  #denials: Array<{ seq: number; error: PermissionDeniedError }> = [];
  #denialSeq = 0;
  #deniedListeners = new Set<(error: PermissionDeniedError) => void>();

  private constructor(nc: NatsConnection, log: Logger, replicas: number, identity: string | undefined, inbox: string) {
    this.nc = nc;
    this.log = log;
    this.replicas = replicas;
    this.identity = identity;
    this.inboxPrefix = inbox;
    this.js = jetstream(nc, { timeout: 10_000 });
    this.#kvm = new Kvm(this.js);
    this.#objm = new Objm(this.js);
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const servers = normaliseServers(options.servers ?? defaultNatsUrl());
    const log = options.logger.child({ component: "bus" });
    const identity = identityOf(options);
    const inbox = options.inboxPrefix ?? (identity !== undefined && isValidName(identity) ? inboxPrefixOf(identity) : INBOX_ROOT);
    const connectionOptions: ConnectionOptions = {
      servers,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      waitOnFirstConnect: options.waitForServer ?? false,
      timeout: 5_000,
      pingInterval: 10_000,
      inboxPrefix: inbox,
    };
    if (options.user !== undefined) connectionOptions.user = options.user;
    if (options.pass !== undefined) connectionOptions.pass = options.pass;
    if (options.token !== undefined) connectionOptions.token = options.token;
    if (options.nkeySeedFile) {
      const seed = new TextEncoder().encode(readFileSync(options.nkeySeedFile, "utf8").trim());
      connectionOptions.authenticator = nkeyAuthenticator(seed);
    }
    if (options.credsFile) connectionOptions.authenticator = credsAuthenticator(readFileSync(options.credsFile));
    if (options.tls && (options.tls.caFile || options.tls.certFile)) {
      connectionOptions.tls = {
        ...(options.tls.caFile ? { caFile: options.tls.caFile } : {}),
        ...(options.tls.certFile ? { certFile: options.tls.certFile } : {}),
        ...(options.tls.keyFile ? { keyFile: options.tls.keyFile } : {}),
      };
    }
    let nc: NatsConnection;
    try {
      nc = await connect(connectionOptions);
    } catch (err) {
      throw unreachable(servers, identity, err, Boolean(options.tls?.caFile && !options.tls.certFile));
    }
    const bus = new Bus(nc, log, options.replicas ?? 1, identity, inbox);
    bus.#watchStatus();
    log.debug({ servers, server: nc.getServer() }, "connected to NATS");
    return bus;
  }

  #watchStatus(): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        switch (s.type) {
          case "disconnect":
            this.log.warn({ server: s.server }, "disconnected from NATS; reconnecting");
            break;
          case "reconnect":
            this.log.info({ server: s.server }, "reconnected to NATS");
            break;
          case "error": {
            const violation = findViolation(s.error);
            if (violation) this.#recordDenial(violation, s.error);
            else this.log.error({ err: s.error }, "NATS connection error");
            break;
          }
          case "ldm":
            this.log.warn({ server: s.server }, "NATS server is entering lame duck mode");
            break;
          default:
            break;
        }
      }
    })().catch(() => undefined);
  }

  #recordDenial(violation: Violation, cause: unknown): PermissionDeniedError {
    const error = this.#permissionError(violation, cause);
    this.#denials.push({ seq: ++this.#denialSeq, error });
    if (this.#denials.length > 100) this.#denials.shift();
    this.log.error(
      { code: error.code, operation: error.operation, subject: error.subject, user: error.user },
      error.message,
    );
    for (const listener of this.#deniedListeners) {
      try {
        listener(error);
      } catch (err) {
        this.log.error({ err }, "permission-denied listener failed");
      }
    }
    return error;
  }

  #permissionError(violation: Violation, cause: unknown): PermissionDeniedError {
    const who = this.identity !== undefined ? `NATS user ${JSON.stringify(this.identity)}` : "this NATS connection (no user)";
    const isInbox = violation.operation === "subscribe" && (violation.subject === this.inboxPrefix || violation.subject.startsWith(`${this.inboxPrefix}.`));
    const message = isInbox
      ? `permission denied: ${who} may not subscribe to its reply inbox ${JSON.stringify(violation.subject)}, so it cannot receive any reply; its permissions must allow subscribing to "${this.inboxPrefix}.>"`
      : `permission denied: ${who} may not ${violation.operation} to ${JSON.stringify(violation.subject)}${violation.queue ? ` (queue ${violation.queue})` : ""}`;
    return new PermissionDeniedError(violation.operation, violation.subject, this.identity, message, { queue: violation.queue, cause });
  }

  /**
   * Calls `listener` with every operation the server refuses on this connection, including
   * plain publishes, which the server reports only after the fact. Returns a function that
   * removes the listener.
   */
  onPermissionDenied(listener: (error: PermissionDeniedError) => void): () => void {
    this.#deniedListeners.add(listener);
    return () => this.#deniedListeners.delete(listener);
  }

  /**
   * Turns anything a NATS or JetStream call threw into a StackbusError: a server permission
   * violation becomes a PermissionDeniedError naming the subject and this client's user.
   */
  toError(err: unknown, fallback: ErrorCode = ErrorCode.Internal): StackbusError {
    if (err instanceof StackbusError) return err;
    const violation = findViolation(err);
    if (violation) return this.#permissionError(violation, err);
    return toStackbusError(err, fallback);
  }

  /** Rethrows a permission violation as PermissionDeniedError, anything else unchanged. */
  async #denialsAsErrors<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const violation = err instanceof StackbusError ? undefined : findViolation(err);
      throw violation ? this.#permissionError(violation, err) : err;
    }
  }

  /** Publishes an event (core NATS, fire and forget). A refusal is logged and reported to `onPermissionDenied`. */
  publish<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>): void {
    const payload = encode(subject, schema, value);
    try {
      this.nc.publish(subject, payload);
    } catch (err) {
      throw isMaxPayload(err) ? tooLarge(subject, payload.length, err) : err;
    }
  }

  /**
   * Publishes an event like `publish`, then waits for the server to have processed it:
   * rejects with PermissionDeniedError when the server refused it.
   */
  async publishConfirmed<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>): Promise<void> {
    const mark = this.#denialSeq;
    this.nc.publish(subject, encode(subject, schema, value));
    await this.#settle();
    const refused = this.#denials.find((d) => d.seq > mark && d.error.operation === "publish" && d.error.subject === subject);
    if (refused) throw refused.error;
  }

  /**
   * Waits until the server has processed a subscription made with `subscribe` or `serve`;
   * rejects with PermissionDeniedError when the server refused it. Returns the subscription.
   */
  async confirmed(sub: Subscription): Promise<Subscription> {
    await this.#settle();
    if (sub.isClosed()) {
      const reason = await sub.closed;
      const violation = reason instanceof Error ? findViolation(reason) : undefined;
      if (violation) throw this.#permissionError(violation, reason);
    }
    return sub;
  }

  /** A server round trip, then one turn of the event loop so its errors have been handled. */
  async #settle(): Promise<void> {
    try {
      await this.nc.flush();
    } catch (err) {
      throw new StackbusError(ErrorCode.Unavailable, `lost the NATS connection: ${(err as Error).message}`, {}, { cause: err });
    }
    await new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Publishes into a JetStream stream and waits for the stream's ack. With `msgID`, a
   * retried publish is stored once (the stream's duplicate window). Retries transient
   * failures (no leader, no responders, timeouts) until `deadlineMs` has passed.
   */
  async publishDurable<S extends z.ZodType>(
    subject: string,
    schema: S,
    value: z.input<S>,
    options: { msgID?: string; deadlineMs?: number } = {},
  ): Promise<PubAck> {
    const payload = encode(subject, schema, value);
    const deadline = Date.now() + (options.deadlineMs ?? 60_000);
    let delay = 100;
    for (;;) {
      try {
        return await this.js.publish(subject, payload, options.msgID ? { msgID: options.msgID } : {});
      } catch (err) {
        const violation = findViolation(err);
        if (violation) throw this.#permissionError(violation, err);
        if (Date.now() + delay > deadline || this.#closed) {
          throw new StackbusError(
            ErrorCode.Unavailable,
            `could not store a message on ${subject}: ${(err as Error).message}`,
            { subject },
            { cause: err },
          );
        }
        this.log.debug({ subject, err: (err as Error).message }, "durable publish failed; retrying");
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  /**
   * Sends a request and parses the `{ ok, value | error }` reply. A coded error reply is
   * thrown as a StackbusError; nobody listening is `UNAVAILABLE`; no answer in time is `TIMEOUT`.
   */
  async request<Q extends z.ZodType, R extends z.ZodType>(
    subject: string,
    requestSchema: Q,
    value: z.input<Q>,
    replyValueSchema: R,
    options: RequestOptions = {},
  ): Promise<z.output<R>> {
    const timeout = options.timeoutMs ?? 5_000;
    let msg: Msg;
    const payload = encode(subject, requestSchema, value);
    try {
      msg = await this.nc.request(subject, payload, { timeout });
    } catch (err) {
      const violation = findViolation(err);
      if (violation) throw this.#permissionError(violation, err);
      if (isMaxPayload(err)) throw tooLarge(subject, payload.length, err);
      throw requestFailure(subject, timeout, err);
    }
    const reply = decode(subject, replySchema(replyValueSchema), msg.data) as
      | { ok: true; value: z.output<R> }
      | { ok: false; error: WireError };
    if (!reply.ok) throw StackbusError.fromJSON(reply.error);
    return reply.value;
  }

  /**
   * Answers requests on `subject` (wildcards allowed). The request is parsed first; a
   * malformed one is answered with `BAD_MESSAGE` and logged. A throwing handler is answered
   * with its coded error. The subscription keeps serving either way.
   */
  serve<Q extends z.ZodType, R extends z.ZodType>(
    subject: string,
    requestSchema: Q,
    replyValueSchema: R,
    handler: Handler<z.output<Q>, z.input<R>>,
    options: ServeOptions = {},
  ): Subscription {
    const replyShape = replySchema(replyValueSchema);
    const sub = this.nc.subscribe(subject, {
      ...(options.queue ? { queue: options.queue } : {}),
      callback: (err, msg) => {
        if (err) {
          if (!findViolation(err)) this.log.error({ err, subject }, "subscription failed");
          return;
        }
        void this.#answer(msg, requestSchema, replyShape, handler);
      },
    });
    return sub;
  }

  async #answer<Q extends z.ZodType, R>(
    msg: Msg,
    requestSchema: Q,
    replyShape: z.ZodType,
    handler: Handler<z.output<Q>, R>,
  ): Promise<void> {
    let reply: unknown;
    try {
      const req = decode(msg.subject, requestSchema, msg.data);
      reply = { ok: true, value: await handler(req, msg.subject, msg) };
    } catch (err) {
      const e = toStackbusError(err);
      const level = e.code === ErrorCode.Internal ? "error" : "warn";
      this.log[level]({ subject: msg.subject, code: e.code, err: e.code === ErrorCode.Internal ? err : undefined }, e.message);
      reply = { ok: false, error: e.toJSON() };
    }
    if (!msg.reply) return;
    try {
      msg.respond(encode(msg.subject, replyShape, reply));
    } catch (err) {
      const e = toStackbusError(err);
      this.log.error({ subject: msg.subject, err: e.message }, "could not encode reply; answering with an internal error");
      msg.respond(new TextEncoder().encode(JSON.stringify({ ok: false, error: { code: ErrorCode.Internal, message: e.message } })));
    }
  }

  /**
   * Receives events on `subject`. Each is parsed with `schema`; one that fails is logged
   * and skipped. Handler errors are logged; the subscription keeps going.
   */
  subscribe<S extends z.ZodType>(
    subject: string,
    schema: S,
    handler: (value: z.output<S>, subject: string, msg: Msg) => void | Promise<void>,
    options: ServeOptions = {},
  ): Subscription {
    return this.nc.subscribe(subject, {
      ...(options.queue ? { queue: options.queue } : {}),
      callback: (err, msg) => {
        if (err) {
          if (!findViolation(err)) this.log.error({ err, subject }, "subscription failed");
          return;
        }
        let value: z.output<S>;
        try {
          value = decode(msg.subject, schema, msg.data);
        } catch (e) {
          this.log.warn({ subject: msg.subject, code: toStackbusError(e).code }, toStackbusError(e).message);
          return;
        }
        try {
          const done = handler(value, msg.subject, msg);
          if (done instanceof Promise) done.catch((e: unknown) => this.#handlerFailed(msg.subject, e));
        } catch (e) {
          this.#handlerFailed(msg.subject, e);
        }
      },
    });
  }

  #handlerFailed(subject: string, err: unknown): void {
    this.log.error({ subject, err }, "event handler failed");
  }

  async jsm(): Promise<JetStreamManager> {
    this.#jsm ??= await this.#denialsAsErrors(() => jetstreamManager(this.nc, { timeout: 10_000 }));
    return this.#jsm;
  }

  /** Creates the stream, or updates its subjects and limits when it exists. Idempotent. */
  async ensureStream(config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
    const jsm = await this.jsm();
    const wanted: Partial<StreamConfig> & { name: string } = {
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: this.replicas,
      ...config,
    };
    await this.#denialsAsErrors(() => retryTransient(async () => {
      try {
        const info = await jsm.streams.info(config.name);
        const current = info.config;
        const same =
          current.subjects.join(",") === config.subjects.join(",") &&
          (wanted.max_bytes === undefined || current.max_bytes === wanted.max_bytes) &&
          (wanted.max_age === undefined || current.max_age === wanted.max_age);
        if (!same) await jsm.streams.update(config.name, { ...current, ...wanted } as StreamConfig);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await jsm.streams.add(wanted);
      }
    }));
  }

  /** The stackbus streams (runs, logs), created or updated. */
  async ensureStackbusStreams(): Promise<void> {
    await this.ensureStream({
      name: STREAMS.runs,
      subjects: [wildcards.runStream],
      max_age: 30 * 24 * 3600 * 1e9,
      max_bytes: 1024 * 1024 * 1024,
      duplicate_window: 120 * 1e9,
    });
    await this.ensureStream({
      name: STREAMS.logs,
      subjects: [wildcards.logStream],
      max_age: 7 * 24 * 3600 * 1e9,
      max_bytes: 2 * 1024 * 1024 * 1024,
      duplicate_window: 120 * 1e9,
    });
  }

  /** Opens a KV bucket, creating it when it does not exist. */
  async kv(bucket: string, options: { history?: number } = {}): Promise<KV> {
    return this.#denialsAsErrors(() =>
      retryTransient(() => this.#kvm.create(bucket, { history: options.history ?? 1, replicas: this.replicas, timeout: 10_000 })),
    );
  }

  /** Opens an object store, creating it when it does not exist. */
  async objectStore(bucket: string): Promise<ObjectStore> {
    return this.#denialsAsErrors(() =>
      retryTransient(() => this.#objm.create(bucket, { replicas: this.replicas, storage: StorageType.File })),
    );
  }

  /**
   * Reads every stored message of `stream` matching `filter` from `startSeq` (or the
   * start), in order, until caught up with what the stream held when called.
   */
  async readStream(
    stream: string,
    filter: string,
    startSeq?: number,
  ): Promise<Array<{ subject: string; seq: number; data: Uint8Array; time: number }>> {
    return withRetry(`reading stream ${stream}`, () => this.#readStreamOnce(stream, filter, startSeq), { attemptMs: 60_000, deadlineMs: 180_000 });
  }

  async #readStreamOnce(
    stream: string,
    filter: string,
    startSeq?: number,
  ): Promise<Array<{ subject: string; seq: number; data: Uint8Array; time: number }>> {
    return this.#denialsAsErrors(() => this.#readStream(stream, filter, startSeq));
  }

  async #readStream(
    stream: string,
    filter: string,
    startSeq?: number,
  ): Promise<Array<{ subject: string; seq: number; data: Uint8Array; time: number }>> {
    const consumer = await this.js.consumers.get(stream, {
      filter_subjects: filter,
      ...(startSeq && startSeq > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }
        : { deliver_policy: DeliverPolicy.All }),
    });
    const info = await consumer.info(true);
    const out: Array<{ subject: string; seq: number; data: Uint8Array; time: number }> = [];
    if (info.num_pending === 0) {
      await consumer.delete().catch(() => undefined);
      return out;
    }
    const messages = await consumer.consume({ max_messages: 512 });
    for await (const m of messages) {
      out.push({ subject: m.subject, seq: m.seq, data: m.data, time: m.info.timestampNanos / 1e6 });
      if (m.info.pending === 0) break;
    }
    await messages.close().catch(() => undefined);
    await consumer.delete().catch(() => undefined);
    return out;
  }

  /**
   * Follows `stream` from `startSeq` (or the start, or only new messages): stored messages
   * first, then live ones, until `signal` aborts. It resumes from the last sequence it
   * delivered whenever its consumer fails or goes quiet (the consumer lives on the
   * stream's leader, which a cluster may lose), so nothing is skipped or repeated.
   */
  async *followStream(
    stream: string,
    filter: string,
    options: { startSeq?: number; onlyNew?: boolean; signal?: AbortSignal; quietMs?: number } = {},
  ): AsyncGenerator<{ subject: string; seq: number; data: Uint8Array; time: number; pending: number }> {
    let next = options.startSeq && options.startSeq > 0 ? options.startSeq : 0;
    if (options.onlyNew) {
      const info = await withRetry(`reading stream ${stream}`, async () => (await this.jsm()).streams.info(stream));
      next = info.state.last_seq + 1;
    }
    const quietMs = options.quietMs ?? 5_000;
    while (!options.signal?.aborted && !this.#closed) {
      let consumer;
      try {
        // Bounded: a creation the server never answers (its node just died) is given up and
        // tried again, so an abort is seen within seconds.
        consumer = await withRetry(
          `following stream ${stream}`,
          () =>
            this.js.consumers.get(stream, {
              filter_subjects: filter,
              ...(next > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next } : { deliver_policy: DeliverPolicy.All }),
            }),
          { attemptMs: 5_000, deadlineMs: 5_000 },
        );
      } catch (err) {
        this.log.debug({ stream, err: (err as Error).message }, "cannot follow the stream yet; trying again");
        await sleep(500);
        continue;
      }
      let quietSince = Date.now();
      try {
        while (!options.signal?.aborted) {
          const batch = await consumer.fetch({ max_messages: 256, expires: 1_000 });
          // A pull whose server went away is never answered: end it ourselves and resume.
          let stalled = false;
          const watchdog = setTimeout(() => {
            stalled = true;
            batch.stop();
          }, 4_000);
          let got = 0;
          try {
            for await (const m of batch) {
              got++;
              next = m.seq + 1;
              yield { subject: m.subject, seq: m.seq, data: m.data, time: m.info.timestampNanos / 1e6, pending: m.info.pending };
              if (options.signal?.aborted) return;
            }
          } finally {
            clearTimeout(watchdog);
          }
          if (stalled) break;
          if (got > 0) quietSince = Date.now();
          else if (Date.now() - quietSince > quietMs) break;
        }
      } catch (err) {
        this.log.debug({ stream, err: (err as Error).message }, "following the stream failed; resuming");
        await sleep(250);
      } finally {
        await consumer.delete().catch(() => undefined);
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Drains subscriptions, flushes, and closes the connection. Safe to call twice. */
  async drain(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => undefined);
    }
  }

  /** Resolves when the connection is closed, with the error that closed it, if any. */
  closedPromise(): Promise<void | Error> {
    return this.nc.closed();
  }
}

export { AckPolicy, DeliverPolicy };
export type { KV, ObjectStore, Msg, Subscription, NatsConnection };

function normaliseServers(servers: string | string[]): string[] {
  const list = Array.isArray(servers) ? servers : servers.split(",");
  return list.map((s) => s.trim()).filter((s) => s.length > 0);
}

function unreachable(servers: string[], identity: string | undefined, err: unknown, tlsWithoutCert = false): StackbusError {
  const detail = err instanceof Error ? err.message : String(err);
  const auth = /authoriz|authentic|permission/i.test(`${(err as Error | undefined)?.name ?? ""} ${detail}`);
  if (auth) {
    const who = identity !== undefined ? `of NATS user ${JSON.stringify(identity)}` : "(none were given: set --user/--password, --nkey or --creds)";
    return new PermissionDeniedError(
      "connect",
      "",
      identity,
      `NATS at ${servers.join(", ")} refused the credentials ${who}: ${detail}`,
      { cause: err },
    );
  }
  if (isTlsFailure(err)) {
    return new StackbusError(
      ErrorCode.Unavailable,
      `TLS with NATS at ${servers.join(", ")} failed (${detail}). Pass the CA that signed the server's certificate with --tls-ca (STACKBUS_TLS_CA), and a client certificate with --tls-cert/--tls-key (STACKBUS_TLS_CERT/KEY) when the server requires one.`,
      { servers },
      { cause: err },
    );
  }
  const mtlsHint =
    tlsWithoutCert && /timeout/i.test(detail)
      ? " If the server requires client certificates (mutual TLS), pass --tls-cert/--tls-key (STACKBUS_TLS_CERT/KEY)."
      : "";
  return new StackbusError(
    ErrorCode.Unavailable,
    `cannot reach NATS at ${servers.join(", ")} (${detail}). Start one with "stackbus up", or pass --nats URL / set NATS_URL.${mtlsHint}`,
    { servers },
    { cause: err },
  );
}

/** A failed TLS handshake or certificate check, anywhere in the cause chain. */
function isTlsFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === "string" && /CERT|SIGNATURE|ISSUER|TLS|SSL|ALTNAME/.test(code)) return true;
    if (typeof message === "string" && /certificate|\bTLS\b|\bSSL\b|handshake/i.test(message)) return true;
  }
  return false;
}

/** The user name, or the nkey public key of the seed file, or of a creds file's seed. */
function identityOf(options: BusOptions): string | undefined {
  if (options.user !== undefined) return options.user;
  const file = options.nkeySeedFile || options.credsFile;
  if (!file) return undefined;
  let seedText: string;
  try {
    seedText = readFileSync(file, "utf8");
  } catch (err) {
    throw new StackbusError(
      ErrorCode.InvalidArgument,
      `cannot read the NATS ${options.nkeySeedFile ? "nkey seed" : "credentials"} file ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  const seed = seedText ? /\bSU[A-Z2-7]{56}\b/.exec(seedText)?.[0] : undefined;
  if (!seed) return undefined;
  try {
    return fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  } catch {
    return undefined;
  }
}

/** A message over the server's max_payload, named with its size. */
function tooLarge(subject: string, bytes: number, err: unknown): StackbusError {
  return new StackbusError(
    ErrorCode.TooLarge,
    `the message for ${subject} is ${bytes} bytes, more than the NATS server accepts (max_payload); nothing was sent`,
    { subject, bytes },
    { cause: err },
  );
}

function isMaxPayload(err: unknown): boolean {
  return /max_payload/i.test((err as Error)?.message ?? "");
}

function requestFailure(subject: string, timeout: number, err: unknown): StackbusError {
  const e = err as { code?: string; message?: string; name?: string };
  const text = `${e.name ?? ""} ${e.code ?? ""} ${e.message ?? ""}`;
  if (/no.?responders|503/i.test(text)) {
    return new StackbusError(ErrorCode.Unavailable, `nothing answers on ${subject}: is the service running?`, { subject }, { cause: err });
  }
  if (/timeout/i.test(text)) {
    return new StackbusError(ErrorCode.Timeout, `no answer on ${subject} within ${timeout}ms`, { subject }, { cause: err });
  }
  if (/permission/i.test(text)) {
    return new StackbusError(ErrorCode.PermissionDenied, `not allowed to request ${subject}: ${e.message ?? ""}`, { subject }, { cause: err });
  }
  return new StackbusError(ErrorCode.Unavailable, `request on ${subject} failed: ${e.message ?? String(err)}`, { subject }, { cause: err });
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: string; api_error?: { err_code?: number } };
  return e.api_error?.err_code === 10059 || /not found/i.test(e.message ?? "");
}

/** Retries an administrative JetStream call while the cluster elects a leader. */
async function retryTransient<T>(fn: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let delay = 100;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const message = (err as Error).message ?? "";
      const transient = /timeout|no responders|not enabled|no suitable peers|leader|temporarily|insufficient resources/i.test(message);
      if (!transient || Date.now() + delay > deadline) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 1_000);
    }
  }
}

/**
 * Runs a JetStream call with a bound on each attempt, trying again until `deadlineMs`:
 * right after a stream or bucket is created on a cluster, or while a new stream leader is
 * elected, a call can stay unanswered instead of failing.
 */
export async function withRetry<T>(what: string, fn: () => Promise<T>, options: { attemptMs?: number; deadlineMs?: number } = {}): Promise<T> {
  const attemptMs = options.attemptMs ?? 3_000;
  const deadline = Date.now() + (options.deadlineMs ?? 30_000);
  let last: unknown;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StackbusError(ErrorCode.Timeout, `${what}: no answer within ${attemptMs}ms`)), attemptMs);
        }),
      ]);
    } catch (err) {
      last = err;
      if ((err as { code?: string }).code === ErrorCode.PermissionDenied || Date.now() > deadline) break;
      await sleep(200);
    } finally {
      clearTimeout(timer);
    }
  }
  throw last instanceof StackbusError ? last : new StackbusError(ErrorCode.Unavailable, `${what} failed: ${(last as Error)?.message ?? String(last)}`, {}, { cause: last });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
