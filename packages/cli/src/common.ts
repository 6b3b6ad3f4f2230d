import { Option, type Command } from "commander";
import pc from "picocolors";
import {
  Bus,
  createLogger,
  defaultNatsUrl,
  silentLogger,
  type BusOptions,
  type Logger,
} from "@stackbus/bus";
import { ErrorCode, hasCode, StackbusError, toStackbusError, validateName } from "@stackbus/protocol";

/** Exit codes, documented in `stackbus --help` and docs/cli.md. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, interrupted: 130 } as const;

/** Options every command that talks to the bus takes. */
export interface BusFlags {
  nats?: string;
  lab?: string;
  user?: string;
  password?: string;
  nkey?: string;
  creds?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  replicas?: string;
}

/** Adds the connection options (`--nats`, credentials, TLS) to a command. */
export function withBusOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--nats <url>", "NATS server URL(s), comma-separated").env("NATS_URL").default("nats://127.0.0.1:4222"))
    .addOption(new Option("--user <user>", "NATS user").env("STACKBUS_NATS_USER"))
    .addOption(new Option("--password <password>", "NATS password").env("STACKBUS_NATS_PASSWORD"))
    .addOption(new Option("--nkey <file>", "NATS nkey seed file").env("STACKBUS_NATS_NKEY"))
    .addOption(new Option("--creds <file>", "NATS credentials file").env("STACKBUS_NATS_CREDS"))
    .addOption(new Option("--tls-ca <file>", "CA certificate to verify the NATS server").env("STACKBUS_TLS_CA"))
    .addOption(new Option("--tls-cert <file>", "client certificate (mutual TLS)").env("STACKBUS_TLS_CERT"))
    .addOption(new Option("--tls-key <file>", "client key (mutual TLS)").env("STACKBUS_TLS_KEY"))
    .addOption(new Option("--replicas <n>", "JetStream replicas for streams and buckets this process creates (3 on a 3-node cluster)").env("STACKBUS_REPLICAS"));
}

/** Adds `--lab NAME`. */
export function withLabOption(cmd: Command): Command {
  return cmd.addOption(new Option("--lab <name>", "lab name (default: the only lab applied)").env("STACKBUS_LAB"));
}

export function busOptions(flags: BusFlags, name: string, logger: Logger, extra: Partial<BusOptions> = {}): BusOptions {
  return {
    servers: flags.nats ?? defaultNatsUrl(),
    name,
    logger,
    user: flags.user,
    pass: flags.password,
    nkeySeedFile: flags.nkey,
    credsFile: flags.creds,
    tls: { caFile: flags.tlsCa, certFile: flags.tlsCert, keyFile: flags.tlsKey },
    replicas: flags.replicas ? Number(flags.replicas) : undefined,
    ...extra,
  };
}

/** Connects for a short-lived command: fails at once (exit 3) when the bus is not there. */
export async function connectClient(flags: BusFlags, name = "stackbus-cli"): Promise<Bus> {
  return Bus.connect(busOptions(flags, name, cliLogger()));
}

/** Logs of short-lived commands: only warnings, on stderr. */
export function cliLogger(): Logger {
  return process.env["STACKBUS_LOG_LEVEL"] ? createLogger("stackbus-cli") : silentLogger();
}

/**
 * The logger of a long-running process (a service, an agent): lines for people when stderr
 * is a terminal, JSON lines when it is not (journald, a file, a pipe).
 * `STACKBUS_LOG_FORMAT=pretty|json` chooses either way.
 */
export async function serviceLogger(service: string): Promise<Logger> {
  const format = process.env["STACKBUS_LOG_FORMAT"] ?? (process.stderr.isTTY ? "pretty" : "json");
  if (format !== "pretty") return createLogger(service);
  const { PinoPretty } = await import("pino-pretty");
  return createLogger(service, {}, PinoPretty({ destination: 2, sync: true, singleLine: true, colorize: !process.env["NO_COLOR"], translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" }));
}

/** A usage error: exit 2. */
export class UsageError extends StackbusError {
  override name = "UsageError";
  constructor(message: string) {
    super(ErrorCode.InvalidArgument, message);
  }
}

/** Prints an error for people and returns the exit code it means. */
export function reportError(err: unknown): number {
  const e = toStackbusError(err);
  process.stderr.write(`${pc.red("error:")} ${e.message}\n`);
  const diagnostics = hasCode(e, ErrorCode.InvalidManifest) || hasCode(e, ErrorCode.InvalidLocalConf) ? e.data.diagnostics : undefined;
  if (Array.isArray(diagnostics)) {
    // Each message already names its file, line and field.
    for (const d of diagnostics) {
      process.stderr.write(`  ${d.severity === "error" ? pc.red("error") : pc.yellow("warning")} ${d.message}\n`);
    }
  }
  if (e.code === ErrorCode.NatsUnreachable) return EXIT.unreachable;
  if (hasCode(e, ErrorCode.PermissionDenied) && e.data.operation === "connect") return EXIT.unreachable;
  if (e instanceof UsageError || [ErrorCode.InvalidArgument, ErrorCode.InvalidName, ErrorCode.InvalidManifest, ErrorCode.InvalidLocalConf].includes(e.code as never)) return EXIT.usage;
  return EXIT.failed;
}

/** Validates a host list given as `h1,h2`. */
export function parseHostList(value: string): string[] {
  return value
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h.length > 0)
    .map((h) => validateName("host", h));
}

/** True when output goes to a terminal and colours are wanted. */
export function interactive(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env["NO_COLOR"];
}

let exitCode: number = EXIT.ok;

/** Wraps a command action that returns its exit code (commander ignores return values). */
export function exitWith<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    exitCode = await fn(...args);
  };
}

/** The exit code the last action returned. */
export function lastExitCode(): number {
  return exitCode;
}
