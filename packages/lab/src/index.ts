export {
  validateLab,
  localConfFileName,
  DEFAULT_RUN_DEFAULTS,
  DEFAULT_PLUGIN_SETTINGS,
  type Lab,
  type LabHost,
  type LabValidation,
  type Credential,
} from "./manifest.js";
export { readLabBundle, validateLabFile } from "./bundle.js";
export { hostConfig, labShow, labHost, labPluginAccess } from "./views.js";
export { formatPath, type FieldPath } from "./yaml.js";
export { InvalidManifestError } from "./errors.js";
export { readLabHosts } from "./names.js";
