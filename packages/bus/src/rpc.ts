import { randomBytes } from "node:crypto";
import type { Msg, Subscription } from "@nats-io/nats-core";
import { ErrorCode, StackbusError, replySchema, toStackbusError, type WireError } from "@stackbus/protocol";
import type { z } from "zod";
import { decode, encode } from "./codec.js";
import type { BusCore } from "./core.js";
import { findViolation } from "./errors.js";
import { requestFailure, tooLarge } from "./failures.js";

// Core NATS: events, confirmed events, request/reply.

export interface RequestOptions {
  /** @default 5000 */
  timeoutMs?: number;
}

export interface ServeOptions {
  queue?: string;
}

/**
 * What a handler returns when the request was answered another way (a result stored on a
 * stream the requester reads): no reply is sent.
 */
export const NO_REPLY: unique symbol = Symbol("no reply");

/** A handled request: the parsed value and the concrete subject it came on. */
export type Handler<Req, Res> = (req: Req, subject: string, msg: Msg) => Promise<Res | typeof NO_REPLY> | Res | typeof NO_REPLY;

/** Encodes `value` for `subject`, refusing (`TOO_LARGE`) what the server would not accept (its max_payload). */
function encodeFor<S extends z.ZodType>(core: BusCore, subject: string, schema: S, value: z.input<S>): Uint8Array {
  const payload = encode(subject, schema, value);
  const max = core.nc.info?.max_payload;
  if (max !== undefined && payload.length > max) throw tooLarge(subject, payload.length);
  return payload;
}

export function publish<S extends z.ZodType>(core: BusCore, subject: string, schema: S, value: z.input<S>): void {
  core.nc.publish(subject, encodeFor(core, subject, schema, value));
}

export async function publishConfirmed<S extends z.ZodType>(core: BusCore, subject: string, schema: S, value: z.input<S>): Promise<void> {
  const mark = core.denials.mark;
  core.nc.publish(subject, encode(subject, schema, value));
  await settle(core);
  const refused = core.denials.refusedSince(mark, subject);
  if (refused) throw refused;
}

export async function confirmed(core: BusCore, sub: Subscription): Promise<Subscription> {
  await settle(core);
  if (sub.isClosed()) {
    const reason = await sub.closed;
    const violation = reason instanceof Error ? findViolation(reason) : undefined;
    if (violation) throw core.denials.error(violation, reason);
  }
  return sub;
}

/** A server round trip: everything sent before it has been processed by the server. */
export async function flush(core: BusCore): Promise<void> {
  try {
    await core.nc.flush();
  } catch (err) {
    throw new StackbusError(ErrorCode.Unavailable, `lost the NATS connection: ${(err as Error).message}`, {}, { cause: err });
  }
}

/** A server round trip, then one turn of the event loop so its errors have been handled. */
async function settle(core: BusCore): Promise<void> {
  await flush(core);
  await new Promise((resolve) => setImmediate(resolve));
}

export async function request<Q extends z.ZodType, R extends z.ZodType>(
  core: BusCore,
  subject: string,
  requestSchema: Q,
  value: z.input<Q>,
  replyValueSchema: R,
  options: RequestOptions = {},
): Promise<z.output<R>> {
  const timeout = options.timeoutMs ?? 5_000;
  let msg: Msg;
  const payload = encodeFor(core, subject, requestSchema, value);
  try {
    msg = await core.nc.request(subject, payload, { timeout });
  } catch (err) {
    const violation = findViolation(err);
    if (violation) throw core.denials.error(violation, err);
    throw requestFailure(subject, timeout, err);
  }
  const reply = decode(subject, replySchema(replyValueSchema), msg.data) as { ok: true; value: z.output<R> } | { ok: false; error: WireError };
  if (!reply.ok) throw StackbusError.fromJSON(reply.error);
  return reply.value;
}

export function serve<Q extends z.ZodType, R extends z.ZodType>(
  core: BusCore,
  subject: string,
  requestSchema: Q,
  replyValueSchema: R,
  handler: Handler<z.output<Q>, z.input<R>>,
  options: ServeOptions = {},
): Subscription {
  const replyShape = replySchema(replyValueSchema);
  return listen(core, subject, options, (msg) => void answer(core, msg, requestSchema, replyShape, handler));
}

/** Subscribes with `onMsg` for every message; a failed subscription is logged (a refusal is recorded by the status watcher). */
function listen(core: BusCore, subject: string, options: ServeOptions, onMsg: (msg: Msg) => void): Subscription {
  return core.nc.subscribe(subject, {
    ...(options.queue ? { queue: options.queue } : {}),
    callback: (err, msg) => {
      if (err) {
        if (!findViolation(err)) core.log.error({ err, subject }, "subscription failed");
        return;
      }
      onMsg(msg);
    },
  });
}

async function answer<Q extends z.ZodType, R>(core: BusCore, msg: Msg, requestSchema: Q, replyShape: z.ZodType, handler: Handler<z.output<Q>, R>): Promise<void> {
  let reply: unknown;
  try {
    const req = decode(msg.subject, requestSchema, msg.data);
    const value = await handler(req, msg.subject, msg);
    if (value === NO_REPLY) return;
    reply = { ok: true, value };
  } catch (err) {
    const e = toStackbusError(err);
    const level = e.code === ErrorCode.Internal ? "error" : "warn";
    core.log[level]({ subject: msg.subject, code: e.code, err: e.code === ErrorCode.Internal ? err : undefined }, e.message);
    reply = { ok: false, error: e.toJSON() };
  }
  if (!msg.reply) return;
  try {
    msg.respond(encode(msg.subject, replyShape, reply));
  } catch (err) {
    const e = toStackbusError(err);
    core.log.error({ subject: msg.subject, err: e.message }, "could not encode reply; answering with an internal error");
    msg.respond(new TextEncoder().encode(JSON.stringify({ ok: false, error: { code: ErrorCode.Internal, message: e.message } })));
  }
}

/** A request's reply as it arrives on a reply inbox: the value, or the coded error it carried. */
export type ReplyOutcome<T> = { ok: true; value: T } | { ok: false; error: StackbusError };

/** Replies to requests sent with `publishRequest`, all on one subscription. */
export interface ReplyInbox {
  /** The reply subject for `token` (one or more subject tokens, already validated). */
  replyTo(token: string): string;
  close(): void;
}

/**
 * One subscription under this client's inbox prefix that receives the replies to many
 * requests, each told apart by the token its reply subject ends with. Unlike `request`, a
 * request sent this way waits for nothing: no timer, no pending promise; a missing reply is
 * for the sender to notice (it sends again).
 */
export function replyInbox<R extends z.ZodType>(core: BusCore, prefix: string, replyValueSchema: R, onReply: (token: string, outcome: ReplyOutcome<z.output<R>>) => void): ReplyInbox {
  const base = `${prefix}.${randomBytes(8).toString("hex")}`;
  const shape = replySchema(replyValueSchema);
  const sub = listen(core, `${base}.>`, {}, (msg) => {
    const token = msg.subject.slice(base.length + 1);
    if (msg.headers?.hasError) {
      // The server's own answer (503: nobody listens on the request's subject).
      onReply(token, { ok: false, error: new StackbusError(ErrorCode.Unavailable, `no answer to a request (${msg.headers.code} ${msg.headers.description})`) });
      return;
    }
    let reply: { ok: true; value: z.output<R> } | { ok: false; error: WireError };
    try {
      reply = decode(msg.subject, shape, msg.data) as typeof reply;
    } catch (e) {
      core.log.warn({ subject: msg.subject, code: toStackbusError(e).code }, toStackbusError(e).message);
      return;
    }
    onReply(token, reply.ok ? reply : { ok: false, error: StackbusError.fromJSON(reply.error) });
  });
  return {
    replyTo: (token) => `${base}.${token}`,
    close: () => sub.unsubscribe(),
  };
}

/** Sends a request whose reply goes to `reply` (a `ReplyInbox` subject), without waiting for it. */
export function publishRequest<S extends z.ZodType>(core: BusCore, subject: string, schema: S, value: z.input<S>, reply: string): void {
  core.nc.publish(subject, encodeFor(core, subject, schema, value), { reply });
}

export function subscribe<S extends z.ZodType>(
  core: BusCore,
  subject: string,
  schema: S,
  handler: (value: z.output<S>, subject: string, msg: Msg) => void | Promise<void>,
  options: ServeOptions = {},
): Subscription {
  const failed = (subject: string, err: unknown) => core.log.error({ subject, err }, "event handler failed");
  return listen(core, subject, options, (msg) => {
    let value: z.output<S>;
    try {
      value = decode(msg.subject, schema, msg.data);
    } catch (e) {
      core.log.warn({ subject: msg.subject, code: toStackbusError(e).code }, toStackbusError(e).message);
      return;
    }
    try {
      const done = handler(value, msg.subject, msg);
      if (done instanceof Promise) done.catch((e: unknown) => failed(msg.subject, e));
    } catch (e) {
      failed(msg.subject, e);
    }
  });
}
