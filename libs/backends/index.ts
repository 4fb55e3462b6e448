// Importing this module registers every backend of this build with the registry.
import { registerBackend } from './registry.js';
import { dirBackend } from './dir.js';
import { diskBackend } from './disk.js';
import { fsBackend } from './fs.js';
import { netfsBackend } from './netfs.js';
import { logicalBackend } from './logical.js';
import { scsiBackend } from './scsi.js';
import { mpathBackend } from './mpath.js';
import { iscsiBackend } from './iscsi.js';
import { iscsiDirectBackend } from './iscsi-direct.js';

registerBackend(dirBackend);
registerBackend(diskBackend);
registerBackend(fsBackend);
registerBackend(netfsBackend);
registerBackend(logicalBackend);
registerBackend(scsiBackend);
registerBackend(mpathBackend);
registerBackend(iscsiBackend);
registerBackend(iscsiDirectBackend);
