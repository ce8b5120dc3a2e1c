export { type ReadmeExample, ReadmeExampleError, missingOutput, readmeExamples, statedOutput } from './readme-examples.ts';
export { type ConsumerProject, type PackedPackage, type ThirdPartyPackage, LIBRARIES, PackageCheckError, installOffline, packLibraries, thirdPartyClosure } from './consumer.ts';
