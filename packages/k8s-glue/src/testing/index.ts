export { FakeKubeClient, type FakeKubeClientOptions, type FakeCall } from './fake-api.ts';
export { ManualClock } from './manual-clock.ts';
