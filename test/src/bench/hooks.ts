import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The phase arguments extras.d scripts receive during a stack run, in order. */
export const STACK_PHASES: ReadonlyArray<readonly string[]> = [
  ["override_defaults"],
  ["source"],
  ["stack", "pre-install"],
  ["stack", "install"],
  ["stack", "post-config"],
  ["stack", "extra"],
  ["stack", "test-config"],
];

/** Writes K no-op dispatch scripts (`extras.d/NN-noop.sh`) under `topDir`. */
export function writeNoopHooks(topDir: string, k: number): string[] {
  const dir = join(topDir, "extras.d");
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < k; i++) {
    const file = join(dir, `${String(10 + i).padStart(2, "0")}-noop.sh`);
    writeFileSync(
      file,
      `# no-op dispatch script ${i}\nif [[ "$1" == "stack" && "$2" == "install" ]]; then\n    :\nelif [[ "$1" == "source" ]]; then\n    NOOP_${i}=1\nfi\n`,
    );
    files.push(file);
  }
  return files;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The name of host `index` in a benchmark lab. */
export function hostName(index: number): string {
  return `h${String(index).padStart(3, "0")}`;
}
