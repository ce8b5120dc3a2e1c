export { type Lab, type LabOptions, type DemoServiceOptions, type ProbeResult, startLab, cleanLabs, checkPrerequisites, LAB_STATE_ROOT, LAN } from './lab.ts';
export { type ControlPlane, startControlPlane, ensureKubeBinaries, kubeconfig, SERVICE_CLUSTER_IP_RANGES } from './control-plane.ts';
export { KubeClient, type KubeClientOptions, type RawResponse } from './kube-client.ts';
export { type LabNode, type LabNetwork, LAB_PREFIX, labNamespaces, inNetns } from './network.ts';
export { LabError, ManagedProcess, waitFor, run, ip, isAlive, killAndWait } from './exec.ts';
export { withLab } from './tap.ts';
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
