import { readFileSync } from "node:fs";
import { fromSeed } from "@nats-io/nkeys";
import { connect as connectNode } from "@nats-io/transport-node";
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import { ErrorCode, INBOX_ROOT, StackbusError, inboxPrefix as inboxPrefixOf, isValidName } from "@stackbus/protocol";
import type { Denials } from "./denials.js";
import { findViolation } from "./errors.js";
import { unreachable } from "./failures.js";
import type { Logger } from "./logger.js";

/** The default bus URL: `$NATS_URL`, else the local server. */
export function defaultNatsUrl(): string {
  return process.env["NATS_URL"] ?? "nats://127.0.0.1:4222";
}

export interface TlsSettings {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/**
 * Opens a NATS connection: the transport. `@nats-io/transport-node`'s `connect` by default;
 * another (a different transport, or one that keeps a handle on the raw connection in a
 * test) can be given as `BusOptions.connect`.
 */
export type NatsConnect = (options: ConnectionOptions) => Promise<NatsConnection>;

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
  /** The transport that opens the connection. @default `connect` of @nats-io/transport-node */
  connect?: NatsConnect | undefined;
  /**
   * The role this identity has (`agent-compute1`), for messages: an nkey user is otherwise
   * known only by its public key. @default the name of the nkey seed file without `.nk`
   */
  role?: string | undefined;
}

/** An open connection and who it is to the server. */
export interface Opened {
  nc: NatsConnection;
  servers: string[];
  /** The user name or nkey public key, if the client has one. */
  identity: string | undefined;
  /** How messages name the identity: its role when known, else the identity. */
  label: string | undefined;
  inboxPrefix: string;
}

/** Connects as `options` say: servers, credentials, TLS, inbox prefix, reconnect policy. */
export async function openConnection(options: BusOptions): Promise<Opened> {
  const servers = normaliseServers(options.servers ?? defaultNatsUrl());
  const identity = identityOf(options);
  const label = options.role ?? roleOfSeedFile(options.nkeySeedFile) ?? identity;
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
  const connect = options.connect ?? connectNode;
  try {
    return { nc: await connect(connectionOptions), servers, identity, label, inboxPrefix: inbox };
  } catch (err) {
    throw unreachable(servers, identity, err, Boolean(options.tls?.caFile && !options.tls.certFile), label);
  }
}

/** Logs the connection's status changes and records the permission violations it reports. */
export function watchStatus(nc: NatsConnection, log: Logger, denials: Denials): void {
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          log.warn({ server: s.server }, "disconnected from NATS; reconnecting");
          break;
        case "reconnect":
          log.info({ server: s.server }, "reconnected to NATS");
          break;
        case "error": {
          const violation = findViolation(s.error);
          if (violation) denials.record(violation, s.error);
          else log.error({ err: s.error }, "NATS connection error");
          break;
        }
        case "ldm":
          log.warn({ server: s.server }, "NATS server is entering lame duck mode");
          break;
        default:
          break;
      }
    }
  })().catch(() => undefined);
}

function normaliseServers(servers: string | string[]): string[] {
  const list = Array.isArray(servers) ? servers : servers.split(",");
  return list.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** `agent-compute1` for `/etc/stackbus/agent-compute1.nk`, as `stackbus auth gen` names seed files. */
function roleOfSeedFile(file: string | undefined): string | undefined {
  const m = file ? /([^/]+)\.nk$/.exec(file) : null;
  return m?.[1];
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
