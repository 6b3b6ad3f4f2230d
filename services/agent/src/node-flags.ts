/**
 * Node flags an agent process runs with. An agent allocates little and briefly (one
 * step's messages and records at a time), so a 1 MiB young generation costs it no time
 * and keeps several MiB of its resident memory free on every host. The systemd unit,
 * `stackbus up` and the benchmark start agents with these.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];
