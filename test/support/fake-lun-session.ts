// A scripted iscsi-direct target session (IscsiDirectOptions.session) for unit tests of the
// backend without a target: REPORT LUNS, INQUIRY and READ CAPACITY answered from a script,
// every session opened and every command asked recorded in order.
import type { LunSession, OpenSession } from '../../libs/backends/iscsi-direct.js';
import type { StandardInquiry } from '../../libs/backends/iscsi-lun-commands.js';
import type { ReportLunsOptions } from '../../libs/backends/iscsi-report-luns.js';
import type { ReadCapacity } from '../../libs/backends/libiscsi-tools.js';

export const DISK: StandardInquiry = { qualifier: 0, deviceType: 0x00 };
export const CONTROLLER: StandardInquiry = { qualifier: 0, deviceType: 0x0c };

/** READ CAPACITY of `blocks` blocks of `blockSize` bytes. */
export function capacity(blocks: bigint, blockSize = 512n): ReadCapacity {
  return { lastLba: blocks - 1n, blockSize, capacity: blocks * blockSize };
}

export interface SessionScript {
  luns?: number[];
  inquiry?: (lun: number) => StandardInquiry;
  readCapacity?: (lun: number) => ReadCapacity;
}

export interface ScriptedSessions {
  open: OpenSession;
  /** The options of each session opened. */
  opened: ReportLunsOptions[];
  /** `reportLuns`, `inquiry N`, `readCapacity N`, in the order asked. */
  asked: string[];
}

export function scriptedSessions(script: SessionScript): ScriptedSessions {
  const opened: ReportLunsOptions[] = [];
  const asked: string[] = [];
  const session: LunSession = {
    reportLuns: async () => {
      asked.push('reportLuns');
      return script.luns ?? [];
    },
    inquiry: async (lun) => {
      asked.push(`inquiry ${lun}`);
      return (script.inquiry ?? (() => DISK))(lun);
    },
    readCapacity: async (lun) => {
      asked.push(`readCapacity ${lun}`);
      if (!script.readCapacity) throw new Error(`no scripted READ CAPACITY for LUN ${lun}`);
      return script.readCapacity(lun);
    },
  };
  const open: OpenSession = async (opts, body) => {
    opened.push(opts);
    return body(session);
  };
  return { open, opened, asked };
}
