// Every cisternctl command, by name.
import type { Command } from '../command.js';
import { hostDelete } from './host-delete.js';
import { hostList } from './host-list.js';
import { hostPing } from './host-ping.js';
import { poolCreate, poolCreateAs, poolDefine, poolDefineAs } from './pool-define.js';
import { poolEvent } from './pool-event.js';
import { poolEdit } from './pool-edit.js';
import { poolDumpxml, poolInfo } from './pool-info.js';
import {
  poolAutostart, poolBuild, poolDelete, poolDestroy, poolRefresh, poolStart, poolUndefine,
} from './pool-lifecycle.js';
import { poolList } from './pool-list.js';
import { poolName, poolUuid } from './pool-name-uuid.js';
import { findStoragePoolSources, findStoragePoolSourcesAs, poolCapabilities } from './pool-sources.js';
import { volClone, volCreate, volCreateAs, volCreateFrom } from './vol-create.js';
import { volDumpxml, volInfo, volKey, volName, volPath, volPool } from './vol-info.js';
import { volList } from './vol-list.js';
import { volDelete, volResize, volWipe } from './vol-modify.js';
import { volDownload, volUpload } from './vol-transfer.js';
import { cd, echo, exit, help, pwd, quit } from './shell.js';
import { secretDefine, secretDumpxml, secretGetValue, secretList, secretSetValue, secretUndefine } from './secret.js';

// In virsh's order ('help pool' lists them as virsh does; pool-event and pool-capabilities came last).
export const COMMANDS: Command[] = [
  findStoragePoolSourcesAs, findStoragePoolSources,
  poolAutostart, poolBuild, poolCreateAs, poolCreate, poolDefineAs, poolDefine,
  poolDelete, poolDestroy, poolDumpxml, poolEdit, poolInfo, poolList, poolName, poolRefresh, poolStart, poolUndefine, poolUuid,
  poolEvent, poolCapabilities,
  volClone, volCreateAs, volCreate, volCreateFrom, volDelete, volDownload, volDumpxml, volInfo, volKey,
  volList, volName, volPath, volPool, volResize, volUpload, volWipe,
  secretDefine, secretDumpxml, secretGetValue, secretList, secretSetValue, secretUndefine,
  hostList, hostPing, hostDelete,
  cd, echo, exit, help, pwd, quit,
];

const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

export function findCommand(name: string): Command | undefined {
  return BY_NAME.get(name);
}
