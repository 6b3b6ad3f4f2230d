export { startCoordinator, rebuild, applyStored, type CoordinatorHandle } from "./coordinator.js";
export { COORDINATOR_TIMEOUTS, type CoordinatorOptions, type CoordinatorTimeouts } from "./options.js";
