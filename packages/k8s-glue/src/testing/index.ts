export { FakeKubeClient, type FakeKubeClientOptions, type FakeCall } from './fake-api.ts';
export { ManualClock } from './manual-clock.ts';
export { STANDARD_PROCESS_METRICS, metricTypes } from './exposition.ts';
