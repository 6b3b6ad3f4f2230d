export {
  parsePluginSettings,
  requirementsOf,
  type PluginRequirement,
  type PluginSettingsDeclarations,
} from "./settings.js";
export { orderPlugins, requirementWarnings, type OrderablePlugin, type PluginOrderMode } from "./order.js";
export {
  PluginOrderError,
  DigestMismatchError,
  PluginLimitError,
  PluginContentError,
  type MissingRequirement,
  type PluginLimitName,
} from "./errors.js";
export { TreeWalk, checkTreePath, symlinkEscapes, type TreeEntryKind } from "./tree.js";
