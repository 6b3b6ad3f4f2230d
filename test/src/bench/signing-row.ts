import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandVerifier, newCommandSigner } from "@stackbus/bus";
import { newRunId, subjects } from "@stackbus/protocol";
import { median } from "./hooks.js";
import { cpuDelta, cpuSnapshot, addCpu, type CpuSnapshot } from "./meter.js";
import { processesFor, STEPS_PER_RUN, type StackContext, type StackRow } from "./stack-row.js";
import { startStackbusSide } from "./stackbus.js";

/** The stack at one N with every command and cancel signed and checked. */
export interface SigningRow {
  hosts: number;
  repetitions: number;
  signedMs: number[];
  medianSignedMs: number;
  /** The unsigned run's median at the same N, from the stack rows. */
  medianUnsignedMs: number | null;
  /** Per host and step, in the signed runs. */
  cpu: { agentsMs: number; coordinatorMs: number };
  /** One phase command's signature and its check, in this process (ms each). */
  signMs: number;
  verifyMs: number;
}

/**
 * Restarts the coordinator with a signing key and runs the stack with agents that accept
 * only what it signed, as a lab with generated permissions runs.
 */
export async function measureSigning(options: {
  ctx: StackContext;
  hosts: number;
  reps: number;
  dir: string;
  unsigned: StackRow | undefined;
  startCoordinator: (keyFile: string) => Promise<number>;
  stopCoordinator: () => Promise<void>;
}): Promise<SigningRow> {
  const { ctx, hosts } = options;
  const { seed, signer } = newCommandSigner();
  const keyFile = join(options.dir, "coordinator-sign.nk");
  writeFileSync(keyFile, seed, { mode: 0o600 });
  const coordinatorPid = await options.startCoordinator(keyFile);

  const verifier = commandVerifier(signer.publicKey);
  const command = { lab: "benchsigned", runId: newRunId(), kind: "stack", attempt: 1, step: "install", configRevision: 1, timeoutMs: 3_600_000, facts: {} };
  const subject = subjects.hostCommand("benchsigned", "h000");
  let t0 = performance.now();
  let signed = signer.sign(subject, command);
  for (let i = 1; i < 200; i++) signed = signer.sign(subject, command);
  const signMs = (performance.now() - t0) / 200;
  t0 = performance.now();
  for (let i = 0; i < 200; i++) if (!verifier.verify(subject, signed)) throw new Error("a signed command did not verify");
  const verifyMs = (performance.now() - t0) / 200;

  const side = await startStackbusSide({ bus: ctx.bus, url: ctx.url, lab: "benchsigned", root: join(ctx.root, "signed"), hosts, processes: processesFor(hosts), k: ctx.k, nodeFlags: ctx.nodeFlags, coordinatorKey: signer.publicKey });
  try {
    await side.run();
    await new Promise((r) => setTimeout(r, ctx.idleMs));
    await side.run();
    const groups = { agents: side.pids, coordinator: [coordinatorPid] };
    let cpu: CpuSnapshot = {};
    const signedMs: number[] = [];
    for (let i = 0; i < options.reps; i++) {
      await new Promise((r) => setTimeout(r, ctx.idleMs));
      const c0 = cpuSnapshot(groups);
      signedMs.push((await side.run()).totalMs);
      cpu = addCpu(cpu, cpuDelta(cpuSnapshot(groups), c0));
    }
    const hostSteps = hosts * STEPS_PER_RUN * options.reps;
    const row: SigningRow = {
      hosts,
      repetitions: options.reps,
      signedMs,
      medianSignedMs: median(signedMs),
      medianUnsignedMs: options.unsigned?.medianStackbusMs ?? null,
      cpu: { agentsMs: (cpu["agents"]?.selfMs ?? 0) / hostSteps, coordinatorMs: (cpu["coordinator"]?.selfMs ?? 0) / hostSteps },
      signMs,
      verifyMs,
    };
    ctx.say(
      `signed commands, N=${hosts}: stackbus ${row.medianSignedMs.toFixed(0)} ms (unsigned ${row.medianUnsignedMs?.toFixed(0) ?? "not measured"} ms)  [${signedMs.map((v) => v.toFixed(0)).join(", ")}]; ` +
        `CPU ms per host and step: agents ${row.cpu.agentsMs.toFixed(2)}, coordinator ${row.cpu.coordinatorMs.toFixed(2)}; one signature ${signMs.toFixed(3)} ms, one check ${verifyMs.toFixed(3)} ms`,
    );
    return row;
  } finally {
    await side.stop();
  }
}
