export { startConfigService, type ConfigServiceOptions, type ConfigServiceHandle } from "./service.js";
