/**
 * One process of the floor benchmark: `count` hosts, each with its own NATS connection
 * and one persistent bash that sourced the helper library when it started. Step -1 (the
 * prepare barrier) runs nothing in the shell; each later step sources that step's hooks
 * in the shell, then replies. No stackbus code.
 */
import { spawn } from "node:child_process";
import { connect } from "@nats-io/transport-node";
import { STACK_PHASES } from "./hooks.js";

const [url, countText, firstText, hooksJson, library] = process.argv.slice(2);
const count = Number(countText);
const first = Number(firstText);
const hooks = JSON.parse(hooksJson as string) as string[];

async function host(index: number): Promise<void> {
  const nc = await connect({ servers: url as string, name: `bench-floor-${first + index}` });
  let bash: ReturnType<typeof spawnBash> | undefined;
  let buffer = "";
  let waiting: (() => void) | undefined;
  const open = () => {
    bash?.kill("SIGKILL");
    const shell = spawnBash();
    bash = shell;
    shell.stdout.setEncoding("utf8");
    shell.stdout.on("data", (chunk: string) => {
      buffer += chunk;
      if (buffer.includes("__done__\n")) {
        buffer = "";
        waiting?.();
      }
    });
  };
  const run = (code: string) =>
    new Promise<void>((resolve) => {
      waiting = resolve;
      bash?.stdin.write(`${code}\necho __done__\n`);
    });
  open();
  await run(`source ${JSON.stringify(library)} </dev/null`);
  nc.subscribe("floor.step", {
    callback: (_err, msg) => {
      const step = Number(new TextDecoder().decode(msg.data));
      const code =
        step < 0
          ? ":"
          : hooks.map((h) => `source ${JSON.stringify(h)} ${(STACK_PHASES[step] ?? []).join(" ")} </dev/null`).join("\n");
      void run(code).then(() => nc.publish(msg.reply ?? "floor.done", String(first + index)));
    },
  });
  await nc.flush();
}

function spawnBash() {
  return spawn("bash", ["--noprofile", "--norc"], { stdio: ["pipe", "pipe", "inherit"] });
}

await Promise.all(Array.from({ length: count }, (_, i) => host(i)));
process.send?.("ready");
