import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type PubAck, type StreamConfig } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { ObjectStore } from "@nats-io/obj";
import { ErrorCode, StackbusError, toStackbusError } from "@stackbus/protocol";
import type { z } from "zod";
import { openConnection, watchStatus, type BusOptions } from "./connection.js";
import type { BusCore } from "./core.js";
import { Denials } from "./denials.js";
import { publishDurable, type DurableOptions } from "./durable.js";
import type { PermissionDeniedError } from "./errors.js";
import { followStream, type FollowedMessage, type FollowOptions } from "./follow.js";
import type { Logger } from "./logger.js";
import * as rpc from "./rpc.js";
import type { Handler, ReplyInbox, ReplyOutcome, RequestOptions, ServeOptions } from "./rpc.js";
import { Stores } from "./stores.js";
import { ensureStackbusStreams, ensureStream, readLastPerSubject, readStream, type StoredMessage } from "./streams.js";

/**
 * Typed access to NATS for every stackbus process. Every message is checked against its
 * zod schema when sent and parsed again when received; a message that fails is logged
 * (events) or answered with a coded error (requests), never a crash.
 *
 * The parts live in their own modules: the connection, credentials and TLS
 * (`connection.ts`), the server's refusals (`denials.ts`), events and request/reply
 * (`rpc.ts`), durable publish (`durable.ts`), streams (`streams.ts`), following a stream
 * (`follow.ts`), KV and object stores (`stores.ts`), and how failures become coded errors
 * (`failures.ts`, `retry.ts`).
 *
 * `await using bus = await Bus.connect(...)` drains it at the end of the scope.
 */
export class Bus implements AsyncDisposable {
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly replicas: number;
  /** Who this client is to the server: its user name or nkey public key, if it has one. */
  readonly identity: string | undefined;
  /** The prefix of this client's reply inboxes. */
  readonly inboxPrefix: string;
  readonly #nc: NatsConnection;
  readonly #core: BusCore;
  readonly #denials: Denials;
  readonly #stores: Stores;
  #jsm: JetStreamManager | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, log: Logger, replicas: number, identity: string | undefined, inbox: string, label: string | undefined) {
    this.#nc = nc;
    this.log = log;
    this.replicas = replicas;
    this.identity = identity;
    this.inboxPrefix = inbox;
    this.js = jetstream(nc, { timeout: 10_000 });
    this.#denials = new Denials(log, identity, inbox, label);
    const isClosed = () => this.#closed;
    this.#core = {
      nc,
      js: this.js,
      log,
      replicas,
      denials: this.#denials,
      get closed() {
        return isClosed();
      },
      jsm: () => this.jsm(),
    };
    this.#stores = new Stores(this.#core);
  }

  /** Connects (through `options.connect`, the transport, when given) and watches the connection. */
  static async connect(options: BusOptions): Promise<Bus> {
    const log = options.logger.child({ component: "bus" });
    const opened = await openConnection(options);
    const bus = new Bus(opened.nc, log, options.replicas ?? 1, opened.identity, opened.inboxPrefix, opened.label);
    watchStatus(opened.nc, log, bus.#denials);
    log.debug({ servers: opened.servers, server: opened.nc.getServer() }, "connected to NATS");
    return bus;
  }

  /**
   * The raw connection.
   * @deprecated Use the bus's own methods (`flush()`, `publish`, `request`, ...); what they
   * lack belongs in the bus package. Kept until the agent no longer uses it.
   */
  get nc(): NatsConnection {
    return this.#nc;
  }

  /**
   * Calls `listener` with every operation the server refuses on this connection, including
   * plain publishes, which the server reports only after the fact. Returns a function that
   * removes the listener.
   */
  onPermissionDenied(listener: (error: PermissionDeniedError) => void): () => void {
    return this.#denials.listen(listener);
  }

  /**
   * Turns anything a NATS or JetStream call threw into a StackbusError: a server permission
   * violation becomes a PermissionDeniedError naming the subject and this client's user.
   */
  toError(err: unknown, fallback: ErrorCode = ErrorCode.Internal): StackbusError {
    if (err instanceof StackbusError) return err;
    return this.#denials.asDenial(err) ?? toStackbusError(err, fallback);
  }

  /** Publishes an event (core NATS, fire and forget). A refusal is logged and reported to `onPermissionDenied`. */
  publish<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>): void {
    rpc.publish(this.#core, subject, schema, value);
  }

  /**
   * Publishes an event like `publish`, then waits for the server to have processed it:
   * rejects with PermissionDeniedError when the server refused it.
   */
  publishConfirmed<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>): Promise<void> {
    return rpc.publishConfirmed(this.#core, subject, schema, value);
  }

  /**
   * Waits until the server has processed a subscription made with `subscribe` or `serve`;
   * rejects with PermissionDeniedError when the server refused it. Returns the subscription.
   */
  confirmed(sub: Subscription): Promise<Subscription> {
    return rpc.confirmed(this.#core, sub);
  }

  /**
   * Waits until the server has processed everything this client sent so far (its
   * subscriptions included), so a service that has called `serve` answers once this resolves.
   * Rejects with `UNAVAILABLE` when the connection is lost.
   */
  flush(): Promise<void> {
    return rpc.flush(this.#core);
  }

  /**
   * Publishes into a JetStream stream and waits for the stream's ack. With `msgID`, a
   * retried publish is stored once (the stream's duplicate window). Retries transient
   * failures (no leader, no responders, timeouts) until `deadlineMs` has passed.
   */
  publishDurable<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>, options: DurableOptions = {}): Promise<PubAck> {
    return publishDurable(this.#core, subject, schema, value, options);
  }

  /**
   * Sends a request and parses the `{ ok, value | error }` reply. A coded error reply is
   * thrown as a StackbusError; nobody listening is `UNAVAILABLE`; no answer in time is `TIMEOUT`.
   */
  request<Q extends z.ZodType, R extends z.ZodType>(subject: string, requestSchema: Q, value: z.input<Q>, replyValueSchema: R, options: RequestOptions = {}): Promise<z.output<R>> {
    return rpc.request(this.#core, subject, requestSchema, value, replyValueSchema, options);
  }

  /**
   * One subscription under this client's inbox for the replies to many requests sent with
   * `publishRequest`, each told apart by the token its reply subject ends with. A reply is
   * parsed with `replyValueSchema`; a coded error reply arrives as `{ ok: false, error }`.
   */
  replyInbox<R extends z.ZodType>(replyValueSchema: R, onReply: (token: string, outcome: ReplyOutcome<z.output<R>>) => void): ReplyInbox {
    return rpc.replyInbox(this.#core, this.inboxPrefix, replyValueSchema, onReply);
  }

  /**
   * Sends a request answered on `reply` (from `replyInbox`), without waiting: there is no
   * timeout; nobody listening is answered by the server itself (`UNAVAILABLE` on the inbox).
   */
  publishRequest<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>, reply: string): void {
    rpc.publishRequest(this.#core, subject, schema, value, reply);
  }

  /**
   * Answers requests on `subject` (wildcards allowed). The request is parsed first; a
   * malformed one is answered with `BAD_MESSAGE` and logged. A throwing handler is answered
   * with its coded error. The subscription keeps serving either way.
   */
  serve<Q extends z.ZodType, R extends z.ZodType>(subject: string, requestSchema: Q, replyValueSchema: R, handler: Handler<z.output<Q>, z.input<R>>, options: ServeOptions = {}): Subscription {
    return rpc.serve(this.#core, subject, requestSchema, replyValueSchema, handler, options);
  }

  /**
   * Receives events on `subject`. Each is parsed with `schema`; one that fails is logged
   * and skipped. Handler errors are logged; the subscription keeps going.
   */
  subscribe<S extends z.ZodType>(subject: string, schema: S, handler: (value: z.output<S>, subject: string, msg: Msg) => void | Promise<void>, options: ServeOptions = {}): Subscription {
    return rpc.subscribe(this.#core, subject, schema, handler, options);
  }

  async jsm(): Promise<JetStreamManager> {
    this.#jsm ??= await this.#denials.rethrow(() => jetstreamManager(this.#nc, { timeout: 10_000 }));
    return this.#jsm;
  }

  /** Creates the stream, or updates its subjects and limits when it exists. Idempotent. */
  ensureStream(config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
    return ensureStream(this.#core, config);
  }

  /** The stackbus streams (runs, logs), created or updated. */
  ensureStackbusStreams(): Promise<void> {
    return ensureStackbusStreams(this.#core);
  }

  /** Opens a KV bucket, creating it when it does not exist. */
  kv(bucket: string, options: { history?: number } = {}): Promise<KV> {
    return this.#stores.kv(bucket, options);
  }

  /** Opens an object store, creating it when it does not exist. */
  objectStore(bucket: string): Promise<ObjectStore> {
    return this.#stores.objectStore(bucket);
  }

  /**
   * Reads every stored message of `stream` matching `filter` from `startSeq` (or the
   * start), in order, until caught up with what the stream held when called.
   */
  readStream(stream: string, filter: string, startSeq?: number): Promise<StoredMessage[]> {
    return readStream(this.#core, stream, filter, startSeq);
  }

  /** The last stored message of each subject of `stream` matching `filter`. */
  readLastPerSubject(stream: string, filter: string): Promise<StoredMessage[]> {
    return readLastPerSubject(this.#core, stream, filter);
  }

  /**
   * Follows `stream` from `startSeq` (or the start, or only new messages): stored messages
   * first, then live ones, until `signal` aborts. It resumes from the last sequence it
   * delivered whenever its consumer fails or goes quiet (the consumer lives on the
   * stream's leader, which a cluster may lose), so nothing is skipped or repeated.
   */
  followStream(stream: string, filter: string, options: FollowOptions = {}): AsyncGenerator<FollowedMessage> {
    return followStream(this.#core, stream, filter, options);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Drains subscriptions, flushes, and closes the connection. Safe to call twice. */
  async drain(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#nc.drain();
    } catch {
      await this.#nc.close().catch(() => undefined);
    }
  }

  /** Drains the bus at the end of an `await using` scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.drain();
  }

  /** Resolves when the connection is closed, with the error that closed it, if any. */
  closedPromise(): Promise<void | Error> {
    return this.#nc.closed();
  }
}

export type { KV, KvEntry, ObjectStore, Msg, Subscription };
