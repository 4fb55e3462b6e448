// pool-edit: the pool's inactive XML in the user's editor, redefined when it changed
// (virsh's cmdPoolEdit with tools/virsh-edit.c).
import { DefinePoolRequest, GetPoolXMLRequest } from '../../libs/proto/cistern/v1/storage.js';
import { req } from '../args.js';
import type { Command, CommandContext, Terminal } from '../command.js';
import { removeTempFile, runEditor, writeTempXml } from '../editor.js';
import { attempt, CommandError, ReportedError, UsageError } from '../errors.js';
import { readXmlFile } from '../files.js';
import { poolShortName, resolvePool } from '../resolve.js';
import { POOL_OPTION } from './pool-lifecycle.js';

const FAILED = 'Failed.';
const CHANGED_BY_OTHERS = 'The XML configuration was changed by another user.';

/** What the user wants after a failed redefinition (virsh's vshAskReedit, without 'i': pools have no validation to turn off). */
type Answer = 'reedit' | 'discard' | 'redefine';

const ANSWER_HELP = '\ny - yes, start editor again\nn - no, throw away my changes\nf - force, try to redefine again\n? - print this help\n';

/**
 * Asks until the answer is y, n or f. virsh reads one key in raw mode; this reads a line (the
 * key, then Enter). The end of input counts as n.
 */
async function askReedit(terminal: Terminal, ctx: CommandContext, message: string, cause: unknown): Promise<Answer> {
  // virsh reports the reason first (vshReportError), then asks
  if (cause !== undefined) ctx.stderr.write(`error: ${cause instanceof Error ? cause.message : String(cause)}\n`);
  for (;;) {
    // Ctrl-C answers n: the command then ends through its clean-up (the temporary file)
    const line = await terminal.ask(`${message} Try again? [y,n,f,?]: `, ctx.signal);
    const key = line?.trim().charAt(0).toLowerCase() ?? 'n';
    if (key === 'y') return 'reedit';
    if (key === 'n') return 'discard';
    if (key === 'f') return 'redefine';
    if (key === '?') ctx.print(ANSWER_HELP);
  }
}

export const poolEdit: Command = {
  name: 'pool-edit',
  help: 'edit XML configuration for a storage pool',
  description: 'Edit the XML configuration for a storage pool.',
  options: [POOL_OPTION],
  async run(ctx) {
    const text = req(ctx.opts, 'pool');
    const api = ctx.api();
    const ref = await resolvePool(api, text);
    const inactiveXml = async (): Promise<string> => (await attempt(`failed to get XML of pool '${text}'`, () =>
      api.getPoolXml(GetPoolXMLRequest.create({ name: ref.resource, inactive: true })))).xml;
    const editor = (file: string): Promise<void> => runEditor(ctx.env, file);

    let original = await inactiveXml();
    const file = await writeTempXml(ctx.env, original);
    try {
      for (;;) {
        await (ctx.terminal ? ctx.terminal.lend(() => editor(file)) : editor(file));
        const edited = await readXmlFile(file);
        if (edited === original) {
          ctx.printExtra(`Pool ${ref.pool} XML configuration not changed.\n`);
          return;
        }
        let answer: Answer;
        do {
          // Someone else's change since the file was written would be lost: ask first (virsh does).
          const current = await inactiveXml();
          let message = CHANGED_BY_OTHERS;
          let cause: unknown;
          if (current === original) {
            try {
              const pool = await api.definePool(DefinePoolRequest.create({ host: ref.host, xml: edited }));
              ctx.printExtra(`Pool ${poolShortName(pool)} XML configuration edited.\n`);
              return;
            } catch (err) {
              message = FAILED;
              cause = err;
            }
          }
          original = current;
          // Without a terminal nobody can answer: the command fails with the reason (virsh 9.0
          // prints only 'error: Failed.', then 'Pool (null) XML configuration edited.', exit 0).
          if (!ctx.terminal) throw cause === undefined ? new UsageError(message) : new CommandError(message, cause);
          answer = await askReedit(ctx.terminal, ctx, message, cause);
          if (answer === 'discard') throw new ReportedError();
        } while (answer === 'redefine');
      }
    } finally {
      await removeTempFile(file);
    }
  },
};
