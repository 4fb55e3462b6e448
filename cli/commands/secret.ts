// virsh's secret commands over the Secret API: secret-define, secret-dumpxml, secret-set-value,
// secret-get-value, secret-undefine, secret-list. A CHAP iSCSI pool's password and a LUKS
// volume's passphrase are set here. Unlike libvirt, no call gives a value back
// (docs/security.md, "Secrets"): secret-get-value says so.
import {
  DefineSecretRequest, GetSecretRequest, ListSecretsRequest, SetSecretValueRequest, UndefineSecretRequest,
  type Secret,
} from '../../libs/proto/cistern/v1/storage.js';
import { formatSecretXml, secretUsageTypeName } from '../../libs/xml/secret.js';
import type { StorageApi } from '../api.js';
import { flag, req, str, type OptionSpec } from '../args.js';
import { JSON_OPTION, type Command, type CommandContext } from '../command.js';
import { attempt, CommandError, UsageError } from '../errors.js';
import { readLocalFile, readXmlFile } from '../files.js';
import { toJson } from '../format/json.js';
import { renderTable } from '../format/table.js';
import { VALIDATE_OPTION } from './vol-common.js';
import { XPATH_OPTIONS } from './pool-info.js';
import { dumpXml } from '../format/dumpxml.js';

const SECRET_OPTION: OptionSpec = { name: 'secret', type: 'string', required: true, nonEmpty: true, metavar: 'secret', help: 'secret UUID' };

/** virFileReadAll's limit in cmdSecretSetValue: a value file is a password or a key, not data. */
const MAX_VALUE_FILE = 1024;

/** virshCommandOptSecret: the secret the argument names (its UUID), or virsh's 'failed to get secret'. */
async function lookupSecret(api: StorageApi, text: string): Promise<Secret> {
  return attempt(`failed to get secret '${text}'`, () => api.getSecret(GetSecretRequest.create({ name: text })));
}

export const secretDefine: Command = {
  name: 'secret-define',
  help: 'define or modify a secret from an XML file',
  description: 'Define or modify a secret.',
  options: [{ name: 'file', type: 'string', required: true, nonEmpty: true, help: 'file containing secret attributes in XML' }, VALIDATE_OPTION],
  async run(ctx) {
    const file = req(ctx.opts, 'file');
    const xml = await readXmlFile(file);
    const api = ctx.api();
    const secret = await attempt(`Failed to set attributes from ${file}`, () =>
      api.defineSecret(DefineSecretRequest.create({ xml, validate: flag(ctx.opts, 'validate') })));
    ctx.printExtra(`Secret ${secret.uuid} created\n`);
  },
};

export const secretDumpxml: Command = {
  name: 'secret-dumpxml',
  help: 'secret attributes in XML',
  description: 'Output attributes of a secret as an XML dump to stdout.',
  options: [SECRET_OPTION, ...XPATH_OPTIONS],
  async run(ctx) {
    const secret = await lookupSecret(ctx.api(), req(ctx.opts, 'secret'));
    ctx.print(dumpXml(formatSecretXml(secret), str(ctx.opts, 'xpath'), flag(ctx.opts, 'wrap')));
  },
};

/** cmdSecretSetValue's exclusive pairs, in its order (the first pair given is the one reported). */
const EXCLUSIVE_VALUE_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ['file', 'base64'], ['plain', 'base64'], ['interactive', 'base64'], ['interactive', 'plain'], ['interactive', 'file'],
];

export const secretSetValue: Command = {
  name: 'secret-set-value',
  help: 'set a secret value',
  description: 'Set a secret value.',
  options: [
    SECRET_OPTION,
    { name: 'file', type: 'string', named: true, nonEmpty: true, help: 'read secret from file' },
    { name: 'plain', type: 'bool', help: 'read the secret from file without converting from base64' },
    { name: 'interactive', type: 'bool', help: 'read the secret from the terminal' },
    { name: 'base64', type: 'string', named: true, nonEmpty: true, secret: true, help: 'base64-encoded secret value' },
  ],
  async run(ctx) {
    for (const [a, b] of EXCLUSIVE_VALUE_OPTIONS) {
      if (given(ctx, a) && given(ctx, b)) throw new UsageError(`Options --${a} and --${b} are mutually exclusive`);
    }
    const text = req(ctx.opts, 'secret');
    const api = ctx.api();
    const secret = await lookupSecret(api, text);
    const value = await secretValue(ctx);
    await attempt('Failed to set secret value', () => api.setSecretValue(SetSecretValueRequest.create({ name: secret.name, value })));
    ctx.printExtra('Secret value set\n');
  },
};

function given(ctx: CommandContext, option: string): boolean {
  return option === 'plain' || option === 'interactive' ? flag(ctx.opts, option) : str(ctx.opts, option) !== undefined;
}

/** The value secret-set-value sends: from --base64, --file (base64 unless --plain) or the terminal. */
async function secretValue(ctx: CommandContext): Promise<Buffer> {
  const base64 = str(ctx.opts, 'base64');
  const file = str(ctx.opts, 'file');
  if (base64 !== undefined) {
    // as virsh: a warning, not a refusal (the value is in the shell's history and in `ps` now)
    ctx.stderr.write('warning: Passing secret value as command-line argument is insecure!\n');
    return decodeBase64(base64, '--base64');
  }
  if (file !== undefined) {
    const content = await readLocalFile(file, MAX_VALUE_FILE, 'bytes of a secret value');
    return flag(ctx.opts, 'plain') ? content : decodeBase64(content.toString('latin1'), `the content of file '${file}'`);
  }
  if (flag(ctx.opts, 'interactive')) {
    if (!ctx.terminal) throw new UsageError('--interactive reads the value from a terminal, and stdin is not one: give --file (with --plain for a value that is not base64)');
    const typed = await ctx.terminal.askHidden('Enter new value for secret:', ctx.signal);
    if (typed === undefined) throw new UsageError('Failed to read secret');
    return Buffer.from(typed, 'utf8');
  }
  throw new UsageError('Input secret value is missing: give --file FILE (base64, or --plain for the bytes as they are), --interactive, or --base64 VALUE');
}

/**
 * Strict base64, whitespace ignored (a file written by `base64` ends in a newline). glib's
 * decoder that virsh uses skips whatever is not base64 and sets a value nobody typed; a value
 * that is not base64 is more likely a plain password given without --plain.
 */
function decodeBase64(text: string, what: string): Buffer {
  const compact = text.replace(/[\t\n\r ]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw new UsageError(`${what} is not base64 (A-Z a-z 0-9 + / in groups of 4, '=' padding at the end)${what === '--base64' ? '' : ': give --plain to set the bytes as they are'}`);
  }
  return Buffer.from(compact, 'base64');
}

export const secretGetValue: Command = {
  name: 'secret-get-value',
  help: 'Output a secret value',
  description: 'Output a secret value to stdout. (Cistern never gives a value back.)',
  options: [SECRET_OPTION, { name: 'plain', type: 'bool', help: 'get value without converting to base64' }],
  async run(ctx) {
    const text = req(ctx.opts, 'secret');
    const secret = await lookupSecret(ctx.api(), text);
    // libvirt refuses a private secret's value the same way; Cistern treats every secret so
    throw new CommandError(
      `failed to get the value of secret '${text}'`,
      new Error(`Cistern never gives a secret's value back (docs/security.md, "Secrets"); secret ${secret.uuid} ${secret.hasValue ? 'has a value: replace it with secret-set-value' : 'has no value yet: set one with secret-set-value'}`),
    );
  },
};

export const secretUndefine: Command = {
  name: 'secret-undefine',
  help: 'undefine a secret',
  description: 'Undefine a secret.',
  options: [SECRET_OPTION],
  async run(ctx) {
    const text = req(ctx.opts, 'secret');
    const api = ctx.api();
    const secret = await lookupSecret(api, text);
    await attempt(`Failed to delete secret ${text}`, () => api.undefineSecret(UndefineSecretRequest.create({ name: secret.name })));
    ctx.printExtra(`Secret ${text} deleted\n`);
  },
};

/** Every secret, page by page. */
async function listAllSecrets(api: StorageApi): Promise<Secret[]> {
  const out: Secret[] = [];
  let pageToken = '';
  do {
    const page = await attempt('Failed to list node secrets', () => api.listSecrets(ListSecretsRequest.create({ pageSize: 10_000, pageToken })));
    out.push(...page.secrets);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}

/**
 * virSecretObjMatch: of each pair of flags (--ephemeral/--no-ephemeral, --private/--no-private),
 * given one or both, a secret is listed when it matches one given.
 */
function matchesFilters(ctx: CommandContext, s: Secret): boolean {
  const pair = (yes: string, no: string, value: boolean): boolean => {
    const y = flag(ctx.opts, yes);
    const n = flag(ctx.opts, no);
    return (!y && !n) || (y && value) || (n && !value);
  };
  return pair('ephemeral', 'no-ephemeral', s.ephemeral) && pair('private', 'no-private', s.private);
}

function secretJson(s: Secret): Record<string, unknown> {
  return {
    uuid: s.uuid,
    usageType: secretUsageTypeName(s.usageType) || null,
    usageId: s.usageId || null,
    description: s.description,
    ephemeral: s.ephemeral,
    private: s.private,
    hasValue: s.hasValue,
  };
}

export const secretList: Command = {
  name: 'secret-list',
  help: 'list secrets',
  description: 'Returns a list of secrets',
  options: [
    { name: 'ephemeral', type: 'bool', help: 'list ephemeral secrets' },
    { name: 'no-ephemeral', type: 'bool', help: 'list non-ephemeral secrets' },
    { name: 'private', type: 'bool', help: 'list private secrets' },
    { name: 'no-private', type: 'bool', help: 'list non-private secrets' },
    JSON_OPTION,
  ],
  async run(ctx) {
    const secrets = (await listAllSecrets(ctx.api()))
      .filter((s) => matchesFilters(ctx, s))
      // virshSecretSorter: by UUID, ignoring case
      .sort((a, b) => (a.uuid.toLowerCase() < b.uuid.toLowerCase() ? -1 : a.uuid.toLowerCase() > b.uuid.toLowerCase() ? 1 : 0));
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(secrets.map(secretJson)));
      return;
    }
    const usage = (s: Secret): string => {
      const type = secretUsageTypeName(s.usageType);
      return type ? `${type} ${s.usageId}` : 'Unused';
    };
    ctx.print(renderTable(['UUID', 'Usage'], secrets.map((s) => [s.uuid, usage(s)]), ctx.quiet));
  },
};
