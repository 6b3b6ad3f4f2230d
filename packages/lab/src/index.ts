export {
  validateLab,
  DEFAULT_RUN_DEFAULTS,
  DEFAULT_PLUGIN_SETTINGS,
  type Lab,
  type LabHost,
  type LabValidation,
  type Credential,
} from "./manifest.js";
export { validateLabFile } from "./bundle.js";
export { hostConfig, labShow, labPluginAccess } from "./views.js";
export { InvalidManifestError } from "./errors.js";
export { readLabHosts } from "./names.js";
export { labReference, REFERENCE_EXAMPLE } from "./reference.js";
