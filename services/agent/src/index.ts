export { startAgent, DuplicateAgentError, AGENT_VERSION, type AgentOptions, type AgentHandle } from "./agent.js";
export { BashSession, sessionScriptPath, shq, processGroupMembers, type HookSpec, type HookRun, type HookKind } from "./session.js";
export { listExtras, hooksFor, type InstalledPlugin } from "./hooks.js";
export { DEVSTACK_DEFAULT_SERVICES, sessionPreamble } from "./prepare.js";
export { awaitLabHost, UnknownHostError } from "./lab-check.js";
