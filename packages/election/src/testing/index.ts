// Test doubles for @purelb/election: an in-memory network on a virtual clock and N-member
// simulations, so users can test failover logic without sockets or waiting.
export { VirtualClock } from './virtual-clock.ts';
export { MemoryNetwork, MemoryTransport, type LinkProfile, type MemoryNetworkOptions, type NetworkStats } from './network.ts';
export { SimulatedCluster, simulatedAddress, simulatedName, type SimulatedClusterOptions, type SimulatedMember } from './cluster.ts';
export { seededRandom } from './random.ts';
