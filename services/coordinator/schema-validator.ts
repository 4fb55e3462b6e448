// libvirt's VIR_STORAGE_POOL_DEFINE_VALIDATE and VIR_STORAGE_VOL_CREATE_VALIDATE: a client's
// XML checked against libvirt's RELAX NG schema (storagepool.rng, storagevol.rng). libvirt
// does it in-process with libxml2; Node has no RELAX NG validator, so libxml2's own xmllint
// (Debian libxml2-utils) does it, the document on stdin, through the command runner.
// Nothing is cached: the schema file and xmllint are looked up on every call, so a package
// installed or removed while the coordinator runs is seen at once.
import { constants } from 'node:fs';
import { availableParallelism } from 'node:os';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { execRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { Slots } from './slots.js';
import {
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  SchemaValidationError,
} from '../../libs/errors/errors.js';

/** Where Debian's libvirt0 installs libvirt's schemas. */
export const DEFAULT_SCHEMA_DIR = '/usr/share/libvirt/schemas';
export type SchemaName = 'storagepool' | 'storagevol' | 'secret';

/**
 * A storage document is a few KiB and validates in milliseconds. libxml2's RELAX NG interleave
 * check is quadratic in the number of elements, though (a 1 MiB pool of 55,000 <device/>
 * took 10 s and 32 MB of xmllint): a validated document is held to this size, each xmllint to
 * this time, and only so many run at once, the rest waiting in a short queue.
 */
export const MAX_VALIDATED_XML_BYTES = 256 * 1024;
const XMLLINT_TIMEOUT_MS = 5_000;
const MAX_WAITING = 32;
/** How much of xmllint's report an error carries: its first lines, within gRPC's message limit. */
const REPORT_LINES = 5;
const REPORT_CHARS = 500;

// xmllint's exit codes (xmllintReturnCode): 1 the document is not well-formed, 3 it does not
// validate, 5 the schema did not compile. Any other is a failure of the tool (INTERNAL).
const NOT_WELL_FORMED = 1;
const INVALID = 3;
const SCHEMA_BROKEN = 5;

export interface SchemaValidatorOptions {
  /** Directory of libvirt's .rng files (default /usr/share/libvirt/schemas). */
  schemaDir?: string;
  runner?: CommandRunner;
  /** The xmllint program: a name looked up on PATH, or an absolute path. */
  xmllint?: string;
  /** PATH to look xmllint up in (default the process's). */
  path?: string;
  /** xmllint processes at once (default half the CPUs, at least 1). */
  concurrency?: number;
}

export class SchemaValidator {
  readonly schemaDir: string;
  private readonly runner: CommandRunner;
  private readonly xmllint: string;
  private readonly path: string | undefined;
  private readonly slots: Slots;

  constructor(options: SchemaValidatorOptions = {}) {
    this.schemaDir = options.schemaDir || DEFAULT_SCHEMA_DIR;
    this.runner = options.runner ?? execRunner;
    this.xmllint = options.xmllint ?? 'xmllint';
    this.path = options.path;
    this.slots = new Slots(options.concurrency ?? Math.max(1, Math.floor(availableParallelism() / 2)), MAX_WAITING, 'XML validations');
  }

  /**
   * Resolves when `xml` is valid against the schema; otherwise SchemaValidationError
   * (INVALID_ARGUMENT naming `field`), or FAILED_PRECONDITION when xmllint or the schema is
   * missing here: validation is never skipped silently.
   */
  async validate(xml: string, schema: SchemaName, field = 'xml', signal?: AbortSignal): Promise<void> {
    if (Buffer.byteLength(xml, 'utf8') > MAX_VALIDATED_XML_BYTES) {
      throw new InvalidArgumentError(field, `a document to validate may have at most ${MAX_VALIDATED_XML_BYTES} bytes (256 KiB); storage documents are a few KiB: send it without validate, or split it`);
    }
    const schemaFile = join(this.schemaDir, `${schema}.rng`);
    if (!(await readable(schemaFile))) {
      throw new FailedPreconditionError(
        `cannot validate the XML: libvirt's schema ${schemaFile} is missing on the coordinator's machine ` +
          `(Debian package libvirt0; or point the coordinator's --schema-dir / CISTERN_SCHEMA_DIR at libvirt's schemas)`,
        { schema: schemaFile },
      );
    }
    const xmllint = await this.findXmllint();
    // no network, no catalogs, none of the coordinator's environment: only the document and the schema
    const argv = [xmllint, '--noout', '--nonet', '--nocatalogs', '--relaxng', schemaFile, '-'];
    const result = await this.slots.run(signal, async () => {
      try {
        return await this.runner.run(argv, {
          input: xml,
          timeoutMs: XMLLINT_TIMEOUT_MS,
          okExitCodes: [0, NOT_WELL_FORMED, INVALID, SCHEMA_BROKEN],
          cleanEnv: true,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (err instanceof DeadlineExceededError) {
          throw new ResourceExhaustedError(`${field}: the document did not validate within ${XMLLINT_TIMEOUT_MS / 1000} s (libxml2's RELAX NG check grows with the square of the elements); send fewer elements, or no validate`, { field });
        }
        throw err;
      }
    });
    if (result.exitCode === 0) return;
    const report = firstLines(result.stderr);
    if (result.exitCode === NOT_WELL_FORMED) {
      // Cistern's reader accepted it and libxml2 did not: a parse error, not a schema verdict
      throw new InvalidArgumentError(field, `malformed XML (libxml2): ${report}`);
    }
    if (result.exitCode === SCHEMA_BROKEN) {
      throw new FailedPreconditionError(`cannot validate the XML: libvirt's schema ${schemaFile} does not compile: ${report}`, { schema: schemaFile });
    }
    throw new SchemaValidationError(field, schemaFile, report);
  }

  private async findXmllint(): Promise<string> {
    const candidates = isAbsolute(this.xmllint)
      ? [this.xmllint]
      // only absolute PATH entries: '.' would make it whatever the working directory holds
      : (this.path ?? process.env.PATH ?? '').split(delimiter).filter((dir) => isAbsolute(dir)).map((dir) => join(dir, this.xmllint));
    for (const candidate of candidates) {
      if (await executable(candidate)) return candidate;
    }
    throw new FailedPreconditionError(
      `cannot validate the XML: ${this.xmllint} is not installed on the coordinator's machine (Debian package libxml2-utils)`,
      { command: this.xmllint },
    );
  }
}

async function readable(file: string): Promise<boolean> {
  return access(file, constants.R_OK).then(() => true, () => false);
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false);
}

/**
 * xmllint's report as a client reads it: its first lines, bounded, without the closing
 * '- fails to validate'; '-:5:' (stdin, line 5) said as 'line 5:', and a validity error as
 * 'line 5: ' and libxml2's message, the words libvirt shows; no control characters.
 */
export function firstLines(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd())
    .filter((l) => l !== '' && l !== '- fails to validate')
    // libvirt shows libxml2's message alone; the line it stands on is kept, the rest dropped
    .map((l) => l.replace(/^-:(\d+): element [^:]*: Relax-NG validity error : /, 'line $1: ').replace(/^-:(\d+):/, 'line $1:'));
  let text = lines.slice(0, REPORT_LINES).join('\n');
  if (text.length > REPORT_CHARS) text = `${text.slice(0, REPORT_CHARS - 1)}…`;
  else if (lines.length > REPORT_LINES) text += '\n…';
  return text;
}
