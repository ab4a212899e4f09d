/**
 * conclave/testing — deterministic simulation for your own coordination logic: run real members
 * in one process on virtual time, inject crashes, partitions and message faults from a seed, and
 * check histories for linearizability.
 */
export { SimCluster } from './cluster.js';
export type { SimClusterOptions, MessageVerdict } from './cluster.js';
export { Simulation, runSimulation } from './simulation.js';
export type { SimulationOptions, SimulationResult } from './simulation.js';
export { VirtualClock } from './virtualClock.js';
export { SimNetwork, SimTransport, NO_FAULTS } from './simNetwork.js';
export type { SimFaults } from './simNetwork.js';
export { Rng } from './random.js';
export { HistoryRecorder } from './history.js';
export type { HistEntry, HistOp, HistResult } from './history.js';
export { checkLinearizable, checkSequentialReads } from './linearizability.js';
