import { StackbusError } from "@stackbus/protocol";
import { findViolation, PermissionDeniedError, type Violation } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * What the server refused on one connection: every permission violation it reported, kept
 * (the last 100) so a confirmed publish can tell whether it was among them, and passed to
 * the `onPermissionDenied` listeners. Also turns a violation into a PermissionDeniedError
 * that names the subject and the connection's user.
 */
export class Denials {
  readonly #log: Logger;
  readonly #identity: string | undefined;
  /** How messages name the identity: its role when known. */
  readonly #label: string | undefined;
  readonly #inboxPrefix: string;
  #recent: Array<{ seq: number; error: PermissionDeniedError }> = [];
  #seq = 0;
  #listeners = new Set<(error: PermissionDeniedError) => void>();

  constructor(log: Logger, identity: string | undefined, inboxPrefix: string, label?: string) {
    this.#log = log;
    this.#identity = identity;
    this.#label = label ?? identity;
    this.#inboxPrefix = inboxPrefix;
  }

  /** A mark to compare later denials against (see `refusedSince`). */
  get mark(): number {
    return this.#seq;
  }

  /** The refusal of a publish to `subject` recorded after `mark`, if any. */
  refusedSince(mark: number, subject: string): PermissionDeniedError | undefined {
    return this.#recent.find((d) => d.seq > mark && d.error.operation === "publish" && d.error.subject === subject)?.error;
  }

  /** Records a violation the server reported on the connection, logs it and tells the listeners. */
  record(violation: Violation, cause: unknown): PermissionDeniedError {
    const error = this.error(violation, cause);
    this.#recent.push({ seq: ++this.#seq, error });
    if (this.#recent.length > 100) this.#recent.shift();
    this.#log.error({ code: error.code, operation: error.operation, subject: error.subject, user: error.user }, error.message);
    for (const listener of this.#listeners) {
      try {
        listener(error);
      } catch (err) {
        this.#log.error({ err }, "permission-denied listener failed");
      }
    }
    return error;
  }

  /** Calls `listener` with every later refusal; returns a function that removes it. */
  listen(listener: (error: PermissionDeniedError) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The PermissionDeniedError for a violation, naming the subject and this connection's user. */
  error(violation: Violation, cause: unknown): PermissionDeniedError {
    const identity = this.#identity;
    const inbox = this.#inboxPrefix;
    const who = this.#label !== undefined ? `NATS user ${JSON.stringify(this.#label)}` : "this NATS connection (no user)";
    const isInbox = violation.operation === "subscribe" && (violation.subject === inbox || violation.subject.startsWith(`${inbox}.`));
    const message = isInbox
      ? `permission denied: ${who} may not subscribe to its reply inbox ${JSON.stringify(violation.subject)}, so it cannot receive any reply; its permissions must allow subscribing to "${inbox}.>"`
      : `permission denied: ${who} may not ${violation.operation} to ${JSON.stringify(violation.subject)}${violation.queue ? ` (queue ${violation.queue})` : ""}`;
    return new PermissionDeniedError(violation.operation, violation.subject, identity, message, { queue: violation.queue, cause });
  }

  /** `err` as a PermissionDeniedError when it is a permission violation, else undefined. */
  asDenial(err: unknown): PermissionDeniedError | undefined {
    if (err instanceof StackbusError) return undefined;
    const violation = findViolation(err);
    return violation ? this.error(violation, err) : undefined;
  }

  /** Runs `fn`, rethrowing a permission violation as PermissionDeniedError and anything else unchanged. */
  async rethrow<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.asDenial(err) ?? err;
    }
  }
}
