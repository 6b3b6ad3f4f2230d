export type { SourceLine, MetaBlock, PluginLine, ParsedLocalConf } from "./types.js";
export { uniqueDiagnostics } from "./types.js";
export { parseLocalConf, combineLocalConfs, type ParseOptions } from "./parse.js";
export { listPlugins } from "./plugins.js";
export {
  expansionScript,
  parseExpansionOutput,
  type ExpandRequest,
  type ExpandResult,
  type Expander,
} from "./expand.js";
export {
  mergeConfigGroup,
  MergeError,
  type MergeOutcome,
  type MergeOptions,
  type MergeFiles,
  type MergeErrorContext,
} from "./merge.js";
export { nodeMergeFiles } from "./node-files.js";
export { iniSet, iniAddLiteral, iniDelete, iniHasOption, iniGet, iniGetMultiline, iniSections } from "./ini.js";
