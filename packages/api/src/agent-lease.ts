// The Lease every node agent renews (`purelb-agent-<node>` in PureLB's namespace) and the
// annotations it publishes on it: written by the agent, read by the other agents (lease
// consensus, memberlist addresses) and by `kubectl purelb`.

/** The prefix of the agents' Lease names: `purelb-agent-<node>`. */
export const AGENT_LEASE_PREFIX = 'purelb-agent-';

/** The annotations an agent publishes with each renewal of its Lease. */
export const AgentLeaseAnnotation = {
  /** `<ip>:<port>` the agent's memberlist listens on. */
  memberlistAddress: 'purelb.io/memberlist-address',
  /** The agent's guard mode (`swim`, `lease-consensus`, ...), as purelb_guard_mode. */
  gossipMode: 'purelb.io/gossip-mode',
  /** The LAN subnets the node offers for local addresses, comma-separated (none while excluded). */
  subnets: 'purelb.io/subnets',
  /** `reached/known` of the latest guard decision: the agents this one reaches (itself included) of those it knows. */
  membership: 'purelb.io/membership',
} as const;
