import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ErrorCode, StackbusError } from "@stackbus/protocol";

/** A file of the bash library is missing from the installed package (it ships in `bash/`). */
export class BashlibNotFoundError extends StackbusError {
  override name = "BashlibNotFoundError";
  readonly path: string;
  constructor(path: string) {
    super(ErrorCode.NotFound, `stackbus bash library file not found: ${path} (is the package's bash/ directory installed?)`, {
      path,
    });
    this.path = path;
  }
}

function libraryFile(relative: string): string {
  const path = fileURLToPath(new URL(`../bash/${relative}`, import.meta.url));
  if (!existsSync(path)) throw new BashlibNotFoundError(path);
  return path;
}

/**
 * Absolute path of `bash/functions.sh`, the file the agent sources first in every
 * bash session: it defines DevStack's helper functions and the stackbus ones.
 * @throws BashlibNotFoundError when the package was installed without its bash files.
 */
export function bashlibEntry(): string {
  return libraryFile("functions.sh");
}

/**
 * Absolute path of `bash/stackbus.sh`: `stackbus_export`, `stackbus_fact` and the
 * `__stackbus_die_exit` hook only. With `--devstack-dir` the agent sources DevStack's
 * own `functions` and then this file.
 * @throws BashlibNotFoundError when the package was installed without its bash files.
 */
export function stackbusFunctionsPath(): string {
  return libraryFile("stackbus.sh");
}
