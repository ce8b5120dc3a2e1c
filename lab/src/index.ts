export { type Lab, type LabOptions, type ProcessLabOptions, type DemoServiceOptions, type ProbeResult, startLab, cleanLabs, checkPrerequisites, LAB_STATE_ROOT, LAN, CUT_MAC } from './lab.ts';
export {
  type ArpAnswer,
  type ArpSample,
  type ArpWatch,
  type ArpWatchOptions,
  type ArpWatchSet,
  type ArpWatchSummary,
  type Transition,
  type Unavailability,
  startArpWatch,
} from './arp-watch.ts';
export { type ApiPathState, ApiBridge } from './api-bridge.ts';
export { AddressMonitor, monotonicMs, parseAddressEvent } from './address-monitor.ts';
export { HttpProber, type WatchedRequest } from './http-prober.ts';
export { type CreateDeleteOptions, type CreateDeleteTimes, timeCreateDelete } from './create-delete-timing.ts';
export {
  type ClusterImages,
  type ClusterLab,
  type ClusterLabOptions,
  type ClusterNode,
  type DemoOptions,
  CHART_DIR,
  CLUSTER_ADDRESSES,
  CLUSTER_MAX_NODES,
  CLUSTER_PURELB_NAMESPACE,
  PAUSE_IMAGE,
  checkClusterPrerequisites,
  clusterChartValues,
  createDemoLoadBalancer,
  deployDemo,
  ensureHelm,
  ensureNodeBinaries,
  installPureLBChart,
  loadBalancerAddresses,
  nodePodCidrs,
  parseDemoAnswer,
  pods,
  removeCluster,
  startClusterLab,
  urlOf,
} from './cluster.ts';
export { type ControlPlane, startControlPlane, ensureKubeBinaries, kubeconfig, runBuildScript, SERVICE_CLUSTER_IP_RANGES } from './control-plane.ts';
export { KubeClient, type KubeClientOptions, type RawResponse } from './kube-client.ts';
export { type LabNode, type LabNetwork, LAB_PREFIX, SAMPLER_TAGS_V4, SAMPLER_TAGS_V6, labNamespaces, inNetns } from './network.ts';
export { LabError, ManagedProcess, waitFor, run, ip, isAlive, killAndWait, processState } from './exec.ts';
export { withLab, withClusterLab } from './tap.ts';
export {
  type DaemonProcess,
  type DaemonStartOptions,
  shippedCommand,
  PURELB_NAMESPACE,
  MEMBERLIST_SECRET,
  LAB_VIRTUAL_LINK_KIND,
  CRD_DIR,
  DEFAULT_SERVICE_GROUP,
  installCrds,
  installPureLB,
  parseYamlObjects,
  startAllocator,
  startAgent,
} from './purelb.ts';
export {
  type RoutedNetwork,
  type RouterRoute,
  ROUTED,
  applyRoutedServiceGroup,
  birdNodeConfig,
  checkRoutedPrerequisites,
} from './routed.ts';
export { type BirdNodeParams, type FrrRouterParams, DOC_BIRD_PARAMS, DOC_ROUTER_PARAMS, RoutingConfigError, birdConfig, frrRouterConfig } from './routing.ts';
