export { KubeApiError, KubeConfigError, KubeErrorCode, type KubeStatus, codeForStatus, isKubeError } from './errors.ts';
export {
  type KubeConfig,
  type LoadKubeConfigOptions,
  type CredentialSource,
  type ExecCredentialResult,
  loadKubeConfig,
  tokenFromFile,
  execRefreshMarginMs,
  EXEC_API_VERSIONS,
  SERVICE_ACCOUNT_DIR,
} from './config.ts';
export {
  KubeClient,
  type KubeClientOptions,
  type RequestOptions,
  type ListOptions,
  type ObjectList,
  type WatchOptions,
  type WatchEvent,
  type WatchEventType,
  type JsonPatchOperation,
  type RequestRecord,
  requestChannel,
  withQuery,
} from './client.ts';
export {
  Informer,
  type InformerOptions,
  type InformerHandlers,
  type KubeObject,
  type BackoffOptions,
  objectKey,
  stripManagedFields,
  backoffDelay,
  type InformerClock,
  BOOKMARK_PERIOD_MS,
  BOOKMARK_SLACK_MS,
  WATCH_IDLE_TIMEOUT_MS,
} from './informer.ts';
export { deepFreeze } from './freeze.ts';
export {
  WorkQueue,
  type WorkQueueOptions,
  type WorkQueueMetrics,
  type Clock,
  type TimerHandle,
  systemClock,
  itemBackoffMs,
  maxAttemptsInWindow,
  WORKQUEUE_DURATION_BUCKETS,
  workQueueMetrics,
} from './workqueue.ts';
export { LeaderElector, type LeaderElectorOptions, type LeaderCallbacks, type Lease, microTime } from './leader.ts';
export { EventRecorder, type EventRecorderOptions, type EventRecorderStats, type ObjectReference } from './events.ts';
export { type Condition, type ConditionUpdate, mergePatchIfChanged, setCondition, findCondition, jsonEqual, rfc3339Seconds } from './status.ts';
export {
  MetricsRegistry,
  type Metric,
  Counter,
  Gauge,
  Histogram,
  type MetricOptions,
  type LabelValues,
  MetricsError,
  MetricsErrorCode,
} from './metrics.ts';
export { buildInfo, processMetrics } from './process-metrics.ts';
export { type K8sRequestMetrics, K8S_REQUEST_DURATION_BUCKETS, k8sRequestMetrics } from './request-metrics.ts';
export { eventLoopLagHistogram, monitorEventLoopLag, beatLagMs, EVENT_LOOP_LAG_BUCKETS } from './event-loop.ts';
export { startHealthServer, startMetricsServer, type HealthServer, type HealthServerOptions, type MetricsServerOptions } from './health.ts';
export {
  MetricsAccess,
  type MetricsAccessOptions,
  type AccessDecision,
  type AccessReviewer,
  type AccessReviewResult,
  type TokenReviewResult,
  type ReviewedUser,
  accessDecision,
  bearerToken,
  kubeAccessReviewer,
} from './metrics-access.ts';
export { type EndpointConfig, type Endpoints, type EndpointsOptions, endpointSettings, parseEndpointSettings, startEndpoints } from './endpoints.ts';
export { selfSignedCertificate, type SelfSignedOptions, type PemKeyPair } from './self-signed-cert.ts';
export { onShutdown, ShutdownCoordinator, type ShutdownOptions } from './shutdown.ts';
export { type LogLevel, type JsonLoggerOptions, LOG_LEVELS, createJsonLogger, logLine, parseLogLevel } from './log.ts';
export { type Setting, type Logger, SettingsError, readSettings, parseDuration, parseInteger, parseBool, parseJsonObject, settingsHelp, settingsMarkdown, loadSettingsOrExit } from './settings.ts';
