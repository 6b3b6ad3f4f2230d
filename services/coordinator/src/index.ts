export { startCoordinator, rebuild, applyStored, type CoordinatorOptions, type CoordinatorHandle } from "./coordinator.js";
