export {
  generateAuth,
  writeAuth,
  isSecretFile,
  type AuthMode,
  type AuthOptions,
  type GeneratedAuth,
  type GeneratedUser,
} from "./generate.js";
export {
  SERVICE_ROLES,
  agentRole,
  rolePermissions,
  type Role,
  type ServiceRole,
  type RolePermissions,
  type SubjectRules,
} from "./roles.js";
export { type ServerTls } from "./conf.js";
export { authGenFromManifestFile } from "./manifest.js";
