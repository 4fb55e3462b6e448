// The slice of StorageService the CLI uses, as promises and async iterables.
// client.ts implements it over grpc-js; tests pass a fake through runCli's io.
import type * as pb from '../libs/proto/cistern/v1/storage.js';

export interface StorageApi {
  listHosts(req: pb.ListHostsRequest): Promise<pb.ListHostsResponse>;
  getHost(req: pb.GetHostRequest): Promise<pb.Host>;
  deleteHost(req: pb.DeleteHostRequest): Promise<pb.DeleteHostResponse>;
  pingHost(req: pb.PingHostRequest): Promise<pb.PingHostResponse>;
  definePool(req: pb.DefinePoolRequest): Promise<pb.Pool>;
  createPool(req: pb.CreatePoolRequest): Promise<pb.Pool>;
  undefinePool(req: pb.UndefinePoolRequest): Promise<pb.UndefinePoolResponse>;
  buildPool(req: pb.BuildPoolRequest): Promise<pb.Pool>;
  startPool(req: pb.StartPoolRequest): Promise<pb.Pool>;
  stopPool(req: pb.StopPoolRequest): Promise<pb.Pool>;
  deletePool(req: pb.DeletePoolRequest): Promise<pb.Pool>;
  refreshPool(req: pb.RefreshPoolRequest): Promise<pb.Pool>;
  getPool(req: pb.GetPoolRequest): Promise<pb.Pool>;
  listPools(req: pb.ListPoolsRequest): Promise<pb.ListPoolsResponse>;
  getPoolXml(req: pb.GetPoolXMLRequest): Promise<pb.XMLDocument>;
  setPoolAutostart(req: pb.SetPoolAutostartRequest): Promise<pb.Pool>;
  findPoolSources(req: pb.FindPoolSourcesRequest): Promise<pb.FindPoolSourcesResponse>;
  getPoolCapabilities(req: pb.GetPoolCapabilitiesRequest): Promise<pb.PoolCapabilities>;
  createVolume(req: pb.CreateVolumeRequest): Promise<pb.Volume>;
  cloneVolume(req: pb.CloneVolumeRequest): Promise<pb.Volume>;
  deleteVolume(req: pb.DeleteVolumeRequest): Promise<pb.DeleteVolumeResponse>;
  wipeVolume(req: pb.WipeVolumeRequest): Promise<pb.Volume>;
  resizeVolume(req: pb.ResizeVolumeRequest): Promise<pb.Volume>;
  getVolume(req: pb.GetVolumeRequest): Promise<pb.Volume>;
  listVolumes(req: pb.ListVolumesRequest): Promise<pb.ListVolumesResponse>;
  /** ListVolumes, the response left as wire bytes (for cli/volume-rows.ts); optional: listings fall back to listVolumes. */
  listVolumesBytes?(req: pb.ListVolumesRequest): Promise<Uint8Array>;
  getVolumeXml(req: pb.GetVolumeXMLRequest): Promise<pb.XMLDocument>;
  lookupVolume(req: pb.LookupVolumeRequest): Promise<pb.Volume>;
  defineSecret(req: pb.DefineSecretRequest): Promise<pb.Secret>;
  setSecretValue(req: pb.SetSecretValueRequest): Promise<pb.Secret>;
  getSecret(req: pb.GetSecretRequest): Promise<pb.Secret>;
  listSecrets(req: pb.ListSecretsRequest): Promise<pb.ListSecretsResponse>;
  undefineSecret(req: pb.UndefineSecretRequest): Promise<pb.UndefineSecretResponse>;
  /** Sends the messages in order (header first), honouring flow control. */
  uploadVolume(messages: AsyncIterable<pb.UploadVolumeRequest>): Promise<pb.UploadVolumeResponse>;
  /** Breaking out of the loop cancels the call. */
  downloadVolume(req: pb.DownloadVolumeRequest): AsyncIterable<pb.DownloadVolumeResponse>;
  /** Ends when the signal aborts (or the server ends the stream). */
  /**
   * `onPositioned`: the server has positioned the watch; what happens from then on is delivered.
   * `startSequence` is the first sequence it looks at (x-cistern-start-sequence), when it said.
   */
  watchEvents(req: pb.WatchEventsRequest, signal?: AbortSignal, onPositioned?: (startSequence?: bigint) => void): AsyncIterable<pb.Event>;
  close(): void;
}

export type UnaryMethod = Exclude<keyof StorageApi, 'uploadVolume' | 'downloadVolume' | 'watchEvents' | 'close'>;

export const UNARY_METHODS: UnaryMethod[] = [
  'listHosts', 'getHost', 'deleteHost', 'pingHost', 'definePool', 'createPool', 'undefinePool', 'buildPool', 'startPool',
  'stopPool', 'deletePool', 'refreshPool', 'getPool', 'listPools', 'getPoolXml', 'setPoolAutostart',
  'findPoolSources', 'getPoolCapabilities', 'createVolume', 'cloneVolume', 'deleteVolume',
  'wipeVolume', 'resizeVolume', 'getVolume', 'listVolumes', 'getVolumeXml', 'lookupVolume',
  'defineSecret', 'setSecretValue', 'getSecret', 'listSecrets', 'undefineSecret',
];
