import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { STACK_PHASES } from "./hooks.js";

/**
 * DevStack's own cost on one host: one bash that sources the helper library and then
 * every step's hooks, in order, as stack.sh would (nothing else of stack.sh).
 */
export async function devstackOnce(dir: string, hooks: string[], library: string): Promise<number> {
  const script = join(dir, "devstack-baseline.sh");
  const lines = [`source ${JSON.stringify(library)}`, `TOP_DIR=${JSON.stringify(dir)}`];
  for (const args of STACK_PHASES) {
    lines.push(`for f in ${hooks.map((h) => JSON.stringify(h)).join(" ")}; do source "$f" ${args.join(" ")}; done`);
  }
  writeFileSync(script, `${lines.join("\n")}\n`);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn("bash", ["--noprofile", "--norc", script], { stdio: "ignore" });
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`baseline exited ${code}`))));
  });
  return performance.now() - t0;
}
