export {
  parsePluginSettings,
  requirementsOf,
  type PluginRequirement,
  type PluginSettingsDeclarations,
} from "./settings.js";
export { orderPlugins, requirementWarnings, type OrderablePlugin, type PluginOrderMode } from "./order.js";
export { installPlugin, DEFAULT_DEST, type InstallOptions, type InstallOutcome } from "./install.js";
export { readCheckout, type CheckoutState } from "./checkout.js";
export {
  PluginOrderError,
  DigestMismatchError,
  PluginArchiveMissingError,
  PluginInstallError,
  type MissingRequirement,
} from "./errors.js";
