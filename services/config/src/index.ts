export { startConfigService, CONFIG_SERVICE_DEFAULTS, type ConfigServiceOptions, type ConfigServiceHandle } from "./service.js";
