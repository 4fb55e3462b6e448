// Importing this module registers every backend of this build with the registry.
import { registerBackend } from './registry.js';
import { dirBackend } from './dir.js';
import { fsBackend } from './fs.js';
import { netfsBackend } from './netfs.js';
import { logicalBackend } from './logical.js';
import { scsiBackend } from './scsi.js';
import { mpathBackend } from './mpath.js';

registerBackend(dirBackend);
registerBackend(fsBackend);
registerBackend(netfsBackend);
registerBackend(logicalBackend);
registerBackend(scsiBackend);
registerBackend(mpathBackend);

export { registerBackend, findBackend, getBackend, registeredBackends } from './registry.js';
export { dirBackend, DirBackend } from './dir.js';
export { ExecRunner, execRunner } from './exec-runner.js';
export { RecordingRunner } from './recording-runner.js';
export { probeFile, probeBuffer } from './format-probe.js';
export { probeDeviceContent, requireEmptyDevice, type DeviceContent } from './device-probe.js';
export type * from './backend.js';
export type * from './runner.js';
