export { startFetcherService, type FetcherService, type FetcherServiceOptions } from "./service.js";
export {
  PluginSourceError,
  PluginRefError,
  PluginUrlError,
  PluginOfflineError,
  PluginNotRegisteredError,
  type PluginContext,
} from "./errors.js";
export { resolveSource, stripCredentials, type PluginSource, type SourceKind } from "./source.js";
