export { type ReadmeExample, ReadmeExampleError, readmeExamples } from './readme-examples.ts';
export { type ConsumerProject, type PackedPackage, type ThirdPartyPackage, LIBRARIES, PackageCheckError, installOffline, packLibraries, thirdPartyClosure } from './consumer.ts';
