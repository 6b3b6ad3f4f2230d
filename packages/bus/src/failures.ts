import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { PermissionDeniedError } from "./errors.js";

// How NATS and JetStream failures become stackbus errors.

/** The connection could not be made: refused credentials, a failed TLS handshake, or no server. */
export function unreachable(servers: string[], identity: string | undefined, err: unknown, tlsWithoutCert = false): StackbusError {
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

/** A message over the server's max_payload, named with its size. */
export function tooLarge(subject: string, bytes: number, err: unknown): StackbusError {
  return new StackbusError(
    ErrorCode.TooLarge,
    `the message for ${subject} is ${bytes} bytes, more than the NATS server accepts (max_payload); nothing was sent`,
    { subject, bytes },
    { cause: err },
  );
}

export function isMaxPayload(err: unknown): boolean {
  return /max_payload/i.test((err as Error)?.message ?? "");
}

/** A request that got no reply: nobody listening, no answer in time, refused, or the connection failed. */
export function requestFailure(subject: string, timeout: number, err: unknown): StackbusError {
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

/** JetStream has no such stream. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: string; api_error?: { err_code?: number } };
  return e.api_error?.err_code === 10059 || /not found/i.test(e.message ?? "");
}

/** A JetStream failure that passes once the cluster has a leader again (or a server is back). */
export function isTransient(err: unknown): boolean {
  const message = (err as Error).message ?? "";
  return /timeout|no responders|not enabled|no suitable peers|leader|temporarily|insufficient resources/i.test(message);
}
