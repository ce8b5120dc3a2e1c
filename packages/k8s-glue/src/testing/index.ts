export { FakeKubeClient, type FakeKubeClientOptions, type FakeCall } from './fake-api.ts';
