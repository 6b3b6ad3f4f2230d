#!/usr/bin/env node
import { main } from "../dist/main.js";

const code = await main(process.argv);
process.exitCode = code;
// A command that is done ends: should a library leave a timer behind, it does not keep
// the process alive past a short grace (which lets buffered log lines reach stderr).
setTimeout(() => process.exit(code), 2_000).unref();
