import { ErrorCode, LabListRequestSchema, LabListSchema, StackbusError, subjects, validateName } from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { connectClient, UsageError, type BusFlags } from "./common.js";
import { CLI_TIMEOUT_MS } from "./timeouts.js";

/**
 * The lab a command works on: `--lab` (or `$STACKBUS_LAB`), else the only lab the config
 * service holds. Several labs and no `--lab` is a usage error listing them.
 */
export async function resolveLab(bus: Bus, flag: string | undefined): Promise<string> {
  if (flag) return validateName("lab", flag);
  const list = await bus.request(subjects.labList(), LabListRequestSchema, {}, LabListSchema, { timeoutMs: CLI_TIMEOUT_MS.labList }).catch((err: unknown) => {
    if (err instanceof StackbusError && err.code === ErrorCode.Unavailable) {
      throw new StackbusError(ErrorCode.Unavailable, "the config service does not answer: start it (stackbus up, or stackbus serve config) or pass --lab");
    }
    throw err;
  });
  if (list.labs.length === 1) return (list.labs[0] as { lab: string }).lab;
  if (list.labs.length === 0) throw new StackbusError(ErrorCode.NotFound, "no lab is applied yet: run stackbus lab apply FILE");
  throw new UsageError(`several labs are applied (${list.labs.map((l) => l.lab).join(", ")}): choose one with --lab`);
}

/**
 * Connects, resolves the lab (`--lab` or the only one applied), runs `fn`, and drains the
 * connection whatever happens: the shape of every command that works on a lab.
 */
export async function withLab<T>(flags: BusFlags, fn: (bus: Bus, lab: string) => Promise<T>): Promise<T> {
  const bus = await connectClient(flags);
  try {
    return await fn(bus, await resolveLab(bus, flags.lab));
  } finally {
    await bus.drain();
  }
}
