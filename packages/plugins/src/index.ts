export {
  parsePluginSettings,
  requirementsOf,
  type PluginRequirement,
  type PluginSettingsDeclarations,
} from "./settings.js";
export { orderPlugins, requirementWarnings, type OrderablePlugin, type PluginOrderMode } from "./order.js";
export { PluginOrderError, DigestMismatchError, type MissingRequirement } from "./errors.js";
