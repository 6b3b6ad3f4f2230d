#!/usr/bin/env node
import { main } from "../dist/main.js";

// A reader that stops early (`stackbus runs | head -1`) closes the pipe: that ends the
// command quietly, as it would end `git log`, instead of with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const code = await main(process.argv);
process.exitCode = code;
// A command that is done ends: should a library leave a timer behind, it does not keep
// the process alive past a short grace (which lets buffered log lines reach stderr).
setTimeout(() => process.exit(code), 2_000).unref();
