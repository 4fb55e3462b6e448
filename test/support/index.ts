// Shared test harness: real nats-server, coordinator and agents from dist/, a gRPC client.
export { freePort } from './ports.js';
export { makeTempDir, registerCleanup, runAllCleanups, useTempDir } from './cleanup.js';
export { ServiceProcess, runningProcesses, waitFor, AbortWait, type ExitStatus } from './process.js';
export { startNats, type NatsServer, type NatsOptions } from './nats.js';
export {
  startCoordinator,
  startAgent,
  type CoordinatorHandle,
  type CoordinatorOptions,
  type AgentHandle,
  type AgentOptions,
} from './services.js';
export { connectClient, promiseApi, waitForHosts, type StorageApi, type CallOpts } from './client.js';
export { runCli, type CliResult, type CliOptions } from './cli.js';
export { startStack, useStack, type Stack, type StackOptions } from './stack.js';
export { attachLoop, loopDevicesAvailable, type LoopDevice } from './loop.js';
export { repoRoot, distDir, entryPoints, natsServerBinary } from './paths.js';
export { download, outcomeOf, upload, writeSparseFile } from './volume-data.js';
export { hasTool } from './tools.js';
