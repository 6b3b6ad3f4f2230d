export { installPlugin, DEFAULT_DEST, type InstallOptions, type InstallOutcome } from "./install.js";
export { readCheckout, type CheckoutState } from "./checkout.js";
export { PluginArchiveMissingError, PluginInstallError } from "./errors.js";
export { scanArchive } from "./archive.js";
