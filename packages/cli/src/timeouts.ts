import { parseDuration, type Duration } from "@stackbus/protocol";

/** How long the CLI waits for what it asks and for what it starts: the one place these are set. */
export const CLI_TIMEOUTS = {
  /** `lab apply`, `up`: the config service validates and stores a lab bundle. */
  apply: "30s",
  /** `stack`, `unstack`, `clean`: the coordinator creates or resumes a run (a resume may resolve plugins again). */
  runStart: "120s",
  /** Finding the lab when `--lab` is not given (labs.list). */
  labList: "5s",
  /** `agents`, `lab show`: the config service shows the applied lab. */
  labShow: "10s",
  /** `agents`: each host's agent answers a ping within this, or is listed as having none. */
  agentPing: "1500ms",
  /** `plan`: each agent works out what a run would run there. */
  plan: "20s",
  /** `up`: one probe (labs.list, an agent's ping) while waiting for what it started. */
  probe: "1s",
  /** `up`: the local nats-server must listen within this. */
  natsUp: "15s",
  /** `up`: the config service must answer within this. */
  configUp: "30s",
  /** `up`: every local agent must answer within this. */
  agentUp: "60s",
  /** `up`, on stop: a process that ignores SIGTERM this long is killed. */
  stopGrace: "10s",
} as const satisfies Record<string, Duration>;

/** CLI_TIMEOUTS in milliseconds, compiled once. */
export const CLI_TIMEOUT_MS: Readonly<Record<keyof typeof CLI_TIMEOUTS, number>> = Object.freeze(
  Object.fromEntries(Object.entries(CLI_TIMEOUTS).map(([name, value]) => [name, parseDuration(value, name)])) as Record<keyof typeof CLI_TIMEOUTS, number>,
);
