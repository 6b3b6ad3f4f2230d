import { PermissionViolationError } from "@nats-io/nats-core";
import { ErrorCode, StackbusError } from "@stackbus/protocol";

/** What a NATS user tried to do when the server refused it. */
export type DeniedOperation = "publish" | "subscribe" | "connect";

/**
 * The NATS server refused an operation under the connected user's permissions: a publish
 * (or request) to a subject it may not publish to, a subscription it may not make, or the
 * credentials themselves. Names the subject and the user, so a misconfigured role is found
 * from the message alone instead of from a timeout.
 */
export class PermissionDeniedError extends StackbusError<typeof ErrorCode.PermissionDenied> {
  override name = "PermissionDeniedError";
  readonly operation: DeniedOperation;
  /** The refused subject (empty for a refused connection). */
  readonly subject: string;
  /** The NATS user name or nkey public key, when the client knows it. */
  readonly user: string | undefined;
  readonly queue: string | undefined;

  constructor(
    operation: DeniedOperation,
    subject: string,
    user: string | undefined,
    message: string,
    options: { queue?: string | undefined; cause?: unknown } = {},
  ) {
    super(
      ErrorCode.PermissionDenied,
      message,
      {
        operation,
        subject,
        ...(user !== undefined ? { user } : {}),
        ...(options.queue !== undefined ? { queue: options.queue } : {}),
      },
      { cause: options.cause },
    );
    this.operation = operation;
    this.subject = subject;
    this.user = user;
    this.queue = options.queue;
  }
}

/** The parts of a nats.js `PermissionViolationError` stackbus uses. */
export interface Violation {
  operation: "publish" | "subscribe";
  subject: string;
  queue: string | undefined;
}

/**
 * Finds a server permission violation in `err` or its `cause` chain (nats.js wraps a refused
 * request's violation in a `RequestError`): a `PermissionViolationError`, or an error whose
 * text is the server's `-ERR` for one, read with the client's own parser. Undefined when
 * `err` is something else.
 */
export function findViolation(err: unknown): Violation | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const parsed = !(e instanceof PermissionViolationError) && e instanceof Error ? PermissionViolationError.parse(e.message) : null;
    const violation = e instanceof PermissionViolationError ? e : parsed?.subject ? parsed : null;
    if (violation) {
      return {
        operation: violation.operation === "subscription" ? "subscribe" : "publish",
        subject: violation.subject,
        queue: violation.queue,
      };
    }
  }
  return undefined;
}
