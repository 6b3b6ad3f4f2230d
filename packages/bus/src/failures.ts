import { AuthorizationError, NoRespondersError, PermissionViolationError, RequestError, TimeoutError, UserAuthenticationExpiredError } from "@nats-io/nats-core";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { describeSubject, ErrorCode, StackbusError } from "@stackbus/protocol";
import { PermissionDeniedError } from "./errors.js";

// How NATS and JetStream failures become stackbus errors: by the client's error classes,
// Node's error codes and JetStream's API error codes, never by the text of a message.

/** `err` and its causes, outermost first (a few levels: nats.js wraps once or twice). */
function* causes(err: unknown): Generator<unknown> {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) yield e;
}

/** The first of `err` and its causes that is a `type`. */
export function findCause<T>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (const e of causes(err)) if (e instanceof type) return e;
  return undefined;
}

/** The connection could not be made: refused credentials, a failed TLS handshake, or no server. */
export function unreachable(servers: string[], identity: string | undefined, err: unknown, tlsWithoutCert = false, label = identity): StackbusError {
  const detail = err instanceof Error ? err.message : String(err);
  if (findCause(err, AuthorizationError) || findCause(err, UserAuthenticationExpiredError)) {
    const named = label !== undefined && label !== identity ? `${JSON.stringify(label)} (nkey ${identity})` : JSON.stringify(identity);
    const who = identity !== undefined ? `of NATS user ${named}` : "(none were given: set --user/--password, --nkey or --creds)";
    return new PermissionDeniedError("connect", "", identity, `NATS at ${servers.join(", ")} refused the credentials ${who}: ${detail}`, { cause: err });
  }
  if (isTlsFailure(err)) {
    return new StackbusError(
      ErrorCode.Unavailable,
      `TLS with NATS at ${servers.join(", ")} failed (${detail}). Pass the CA that signed the server's certificate with --tls-ca (STACKBUS_TLS_CA), and a client certificate with --tls-cert/--tls-key (STACKBUS_TLS_CERT/KEY) when the server requires one.`,
      { servers },
      { cause: err },
    );
  }
  // A server that wants a client certificate ends the handshake of a client without one
  // silently: the client sees its connection time out.
  const mtlsHint =
    tlsWithoutCert && findCause(err, TimeoutError)
      ? " If the server requires client certificates (mutual TLS), pass --tls-cert/--tls-key (STACKBUS_TLS_CERT/KEY)."
      : "";
  return new StackbusError(
    ErrorCode.NatsUnreachable,
    `cannot reach NATS at ${servers.join(", ")} (${detail}). Start one with "stackbus up", or pass --nats URL / set NATS_URL.${mtlsHint}`,
    { servers },
    { cause: err },
  );
}

/**
 * Node's codes for a failed TLS handshake or certificate check: its own `ERR_TLS_*` and
 * `ERR_SSL_*`, and OpenSSL's verification results (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 * `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`, `HOSTNAME_MISMATCH`, ...).
 */
const TLS_ERROR_CODE = /^ERR_TLS_|^ERR_SSL_|CERT|SIGNATURE|ISSUER|ALTNAME|^HOSTNAME_MISMATCH$|^INVALID_CA$|^INVALID_PURPOSE$|^PATH_LENGTH_EXCEEDED$/;

/** A failed TLS handshake or certificate check, anywhere in the cause chain. */
function isTlsFailure(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TLS_ERROR_CODE.test(code)) return true;
  }
  return false;
}

/** A message over the server's max_payload, named with its size. */
export function tooLarge(subject: string, bytes: number, err?: unknown): StackbusError {
  return new StackbusError(
    ErrorCode.TooLarge,
    `the message for ${subject} is ${bytes} bytes, more than the NATS server accepts (max_payload); nothing was sent`,
    { subject, bytes },
    { cause: err },
  );
}

/** A request that got no reply: nobody listening, no answer in time, refused, or the connection failed. */
export function requestFailure(subject: string, timeout: number, err: unknown): StackbusError {
  const who = describeSubject(subject);
  if (findCause(err, NoRespondersError) || (err instanceof RequestError && err.isNoResponders())) {
    return new StackbusError(ErrorCode.Unavailable, `${who} does not answer: ${runningHint(subject)}`, { subject }, { cause: err });
  }
  if (findCause(err, TimeoutError)) {
    return new StackbusError(ErrorCode.Timeout, `${who} did not answer within ${timeout}ms`, { subject }, { cause: err });
  }
  if (findCause(err, PermissionViolationError)) {
    return new StackbusError(ErrorCode.PermissionDenied, `not allowed to ask ${who} (${subject}): ${(err as Error).message}`, { subject }, { cause: err });
  }
  return new StackbusError(ErrorCode.Unavailable, `asking ${who} failed: ${(err as Error)?.message ?? String(err)}`, { subject }, { cause: err });
}

/** What to check when nothing answers on a subject. */
function runningHint(subject: string): string {
  if (/^sb\.[^.]+\.host\./.test(subject)) return "is its agent running? (stackbus agents lists the lab's hosts and their agents)";
  return "is it running?";
}

/** The JetStream API error code of `err` (or of its cause), if it is one. */
function apiCode(err: unknown): number | undefined {
  return findCause(err, JetStreamApiError)?.code;
}

/** JetStream has no such stream. */
export function isNotFound(err: unknown): boolean {
  return apiCode(err) === JetStreamApiCodes.StreamNotFound;
}

/** A compare-and-set write to a KV key lost: the key changed (or was created) since it was read. */
export function isWrongLastSequence(err: unknown): boolean {
  const code = apiCode(err);
  return code === JetStreamApiCodes.StreamWrongLastSequence || code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
}

/**
 * JetStream API errors that pass once the cluster has a leader and peers again
 * (nats-server's `server/errors.json`).
 */
const TRANSIENT_API_CODES = new Set<number>([
  10005, // no suitable peers for placement
  10008, // JetStream system temporarily unavailable
  10009, // JetStream cluster can not handle request (no leader yet)
  10023, // insufficient resources
  JetStreamApiCodes.JetStreamNotEnabledForAccount, // 10039, while a restarted server loads its account
  10076, // JetStream not enabled (yet)
]);

/** A JetStream failure that passes once the cluster has a leader again (or a server is back). */
export function isTransient(err: unknown): boolean {
  // No responders covers "JetStream not enabled" too: nats.js reports a JetStream API request
  // nobody answered (no leader, no server) as JetStreamNotEnabled caused by it.
  if (findCause(err, TimeoutError) || findCause(err, NoRespondersError)) return true;
  if (err instanceof RequestError && err.isNoResponders()) return true;
  const api = findCause(err, JetStreamApiError);
  // 503: the server's "service unavailable" for an API request it cannot serve yet.
  return api !== undefined && (TRANSIENT_API_CODES.has(api.code) || api.status === 503);
}
