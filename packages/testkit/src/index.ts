export { bashFd3, type BashScriptOptions } from "./bash.js";
export { INI_CASES, type IniCase, type IniStep } from "./devstack.js";
export type { TempDir } from "./util.js";
export {
  startNats,
  startNatsCluster,
  freePort,
  natsServerBin,
  type NatsServer,
  type NatsCluster,
  type NatsServerOptions,
} from "./nats.js";
export { gitEnv, startGitServer, type GitServer, type GitRequest, type CommitOptions, type FixtureFile } from "./git.js";
export { processAlive, tempDir, waitFor } from "./util.js";
export { track, trackGroup, untrack } from "./cleanup.js";
export { DEVSTACK_TEST_INI } from "./devstack.js";
export {
  devstackEnvironment,
  devstackHost,
  bareMirror,
  giveTo,
  mirrorsDir,
  offlineLocalrc,
  DevstackUnavailable,
  type DevstackEnvironment,
} from "./devstack-env.js";
