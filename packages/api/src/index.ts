export {
  PURELB_API_GROUP,
  PURELB_API_VERSION,
  PURELB_LOAD_BALANCER_CLASS,
  ALLOCATED_BY_VALUE,
  Annotation,
  type ObjectMeta,
  type LocalPoolsSpec,
  type NetboxSpec,
  type PoolUsage,
  type ServiceGroup,
  type ServiceGroupStatus,
  type LBNodeAgent,
  type Node,
  type NodeAddress,
  trimNode,
  type Service,
  type ServicePortSpec,
  type LoadBalancerIngress,
  trimService,
  ingressIPs,
  serviceKey,
  localGroupSpec,
} from './purelb-api.ts';
export {
  type LabelSelector,
  type LabelSelectorOperator,
  type LabelSelectorProblem,
  type LabelSelectorRequirement,
  LABEL_SELECTOR_OPERATORS,
  formatLabelSelector,
  labelKeyProblem,
  labelSelectorProblem,
  labelValueProblem,
  matchesLabelSelector,
} from './label-selector.ts';
export { type ParsedServiceGroup, MIN_SUBNET_PREFIX, parseServiceGroup, serviceGroupStatus } from './servicegroup.ts';
export {
  type LBNodeAgentSettings,
  type ParsedLBNodeAgent,
  LINK_NAME_PATTERN,
  MAX_LINK_NAME_BYTES,
  RESERVED_LINK_NAMES,
  linkNameProblem,
  localIntProblem,
  parseLBNodeAgent,
} from './lbnodeagent.ts';
export { nodeExclusions } from './node-exclusions.ts';
export { AGENT_LEASE_PREFIX, AgentLeaseAnnotation } from './agent-lease.ts';
export {
  type Eligibility,
  type ExclusionReason,
  type NodeView,
  EXCLUDE_LABEL,
  EXCLUSION_REASONS,
  nodeEligibility,
  sameNodeView,
  trimNodeView,
} from './node-eligibility.ts';
export { type Candidacy, type CandidateReason, type GroupNodeSelector, ALL_NODES, candidacy, groupNodeSelector } from './node-candidacy.ts';
export { type AliasUse, METALLB_ANNOTATION_ALIASES, METALLB_ANNOTATION_PREFIXES, isReadAnnotation, withMetalLBAliases } from './metallb-aliases.ts';
