// A document read on a worker thread gives what it gives read on the event loop: the same
// definition, or the same typed error (class, code, message, field, details), over libvirt's
// fixtures, mutations of them (most of which are refused) and the hardened reader's refusals.
// And the worker pool's bounds: a cancelled read stops, a full queue refuses at once.
import { expect } from 'chai';
import { CancelledError, CisternError, InvalidArgumentError } from '../../../libs/errors/errors.js';
import { MAX_XML_BYTES } from '../../../libs/xml/safe-parse.js';
import type { PoolDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { readXml, INLINE_MAX_CHARS } from '../../../services/coordinator/xml-reader.js';
import { readXmlHere, type XmlReadArgs, type XmlReadKind } from '../../../services/coordinator/xml-reads.js';
import { XmlWorkerPool } from '../../../services/coordinator/xml-workers.js';
import { rejects } from '../../support/rejects.js';
import { xmlMutations } from '../../support/xml-mutations.js';
import { fixture, fixtureNames } from '../xml/helpers.js';

const POOL_IN = 'storagepoolxml2xmlin';
const VOL_IN = 'storagevolxml2xmlin';
/** Mutations per fixture: spread over each fixture's list, enough to reach most refusals. */
const MUTATIONS_PER_FIXTURE = 24;

type Outcome =
  | { value: unknown }
  | { error: { cls: string; invalidArgument: boolean; cistern: boolean; code: string; name: string; message: string; field: string | undefined; details: unknown } };

async function outcome(read: Promise<unknown>): Promise<Outcome> {
  try {
    return { value: await read };
  } catch (err) {
    const e = err as CisternError & { field?: string };
    return {
      error: {
        // the class a caller tests for: every CisternError subclass on the way
        cls: [InvalidArgumentError, CancelledError].find((c) => e instanceof c)?.name ?? e.constructor.name,
        invalidArgument: e instanceof InvalidArgumentError,
        cistern: e instanceof CisternError,
        code: e.code,
        name: e.name,
        message: e.message,
        field: e.field,
        details: e.details,
      },
    };
  }
}

/** A pool given without a uuid gets a new random one on each read: compared as 'generated'. */
function withoutNewUuid(result: Outcome, xml: string): Outcome {
  if (!('value' in result)) return result;
  const value = result.value as { uuid?: unknown } | undefined;
  if (typeof value?.uuid !== 'string' || value.uuid === '' || xml.includes(value.uuid)) return result;
  return { value: { ...value, uuid: 'generated' } };
}

function sample<T>(list: T[], n: number): T[] {
  if (list.length <= n) return list;
  const stride = list.length / n;
  return Array.from({ length: n }, (_, i) => list[Math.floor(i * stride)]!);
}

/** A pool document of about `chars` characters: pool-dir with a long comment (read the same). */
function poolOfSize(chars: number): string {
  const xml = fixture(POOL_IN, 'pool-dir.xml');
  return xml.replace('<name>', `<!--${'x'.repeat(Math.max(0, chars - xml.length - 7))}--><name>`);
}

describe('coordinator XML reading: worker thread and event loop give the same', function () {
  this.timeout(120_000);
  let pool: XmlWorkerPool;
  before(() => {
    pool = new XmlWorkerPool({ size: 2 });
  });
  after(() => pool.close());

  async function same<K extends XmlReadKind>(kind: K, args: XmlReadArgs<K>, label: string): Promise<Outcome> {
    const inline = withoutNewUuid(await outcome(readXmlHere(kind, args)), args[0]);
    const onWorker = withoutNewUuid(await outcome(pool.run(kind, args)), args[0]);
    expect(onWorker, label).to.deep.equal(inline);
    return inline;
  }

  const poolDocs = fixtureNames(POOL_IN).map((n) => ({ name: n, xml: fixture(POOL_IN, n) }));
  const schemaDocs = fixtureNames('storagepoolschemadata').map((n) => ({ name: n, xml: fixture('storagepoolschemadata', n) }));

  it('every libvirt pool fixture (accepted and refused types alike), as a pool, a document and its <source>', async () => {
    let refused = 0;
    for (const { name, xml } of [...poolDocs, ...schemaDocs]) {
      if ('error' in (await same('pool', [xml], name))) refused++;
      await same('document', [xml], name);
      const source = /<source>[\s\S]*<\/source>|<source\/>/.exec(xml)?.[0];
      if (source) await same('source', [source], `${name} <source>`);
    }
    // the out-of-scope types (gluster, rbd, sheepdog, zfs, vstorage) and the invalid schema data
    expect(refused).to.be.greaterThan(4);
  });

  it('every libvirt volume fixture, read for each pool type, as a new volume and as a clone', async () => {
    const pools = ['pool-dir.xml', 'pool-disk.xml', 'pool-logical.xml', 'pool-fs.xml', 'pool-iscsi.xml'].map(
      (n) => (readXmlHere('pool', [fixture(POOL_IN, n)]) as Promise<PoolDefinition>),
    );
    const vols = [...fixtureNames(VOL_IN).map((n) => fixture(VOL_IN, n)), ...fixtureNames('storagevolschemadata').map((n) => fixture('storagevolschemadata', n))];
    for (const p of await Promise.all(pools)) {
      for (const xml of vols) {
        for (const cloning of [false, true]) await same('volume', [xml, p, { cloning, formatFromSource: false }], `${p.name}: ${xml.slice(0, 60)}`);
      }
    }
  });

  it('mutations of the fixtures: the same definitions and the same refusals', async () => {
    const dir = (await readXmlHere('pool', [fixture(POOL_IN, 'pool-dir.xml')])) as PoolDefinition;
    let errors = 0;
    for (const { name, xml } of poolDocs) {
      for (const m of sample(xmlMutations(xml, 'pool'), MUTATIONS_PER_FIXTURE)) {
        if ('error' in (await same('pool', [m.xml], `${name}: ${m.what}`))) errors++;
      }
    }
    for (const name of fixtureNames(VOL_IN)) {
      for (const m of sample(xmlMutations(fixture(VOL_IN, name), 'volume'), MUTATIONS_PER_FIXTURE)) {
        if ('error' in (await same('volume', [m.xml, dir, {}], `${name}: ${m.what}`))) errors++;
      }
    }
    expect(errors, 'mutations refused (each compared on both paths)').to.be.greaterThan(100);
  });

  it("the hardened reader's refusals, with their lines and details", async () => {
    const refused = [
      "<!DOCTYPE pool [<!ENTITY x 'y'>]><pool type='dir'/>",
      "<pool type='dir'><name>&x;</name></pool>",
      "<pool type='dir'><name>a\u0001</name></pool>",
      `<pool type='dir'>${'<a>'.repeat(70)}${'</a>'.repeat(70)}</pool>`,
      "<pool type='dir'/><pool type='dir'/>",
      "<?xml version='1.0' encoding='UTF-7'?><pool type='dir'/>",
      "<pool type='dir'><name>p</name>\n<target><path>rel</path></target></pool>",
      "<pool type='dir'><x:name>p</x:name></pool>",
      "<pool type='dir'><name>p</name>",
      '',
      'x'.repeat(MAX_XML_BYTES + 1),
    ];
    for (const xml of refused) {
      const result = await same('pool', [xml], xml.slice(0, 60));
      expect(result, xml.slice(0, 60)).to.have.property('error').that.has.property('invalidArgument', true);
    }
  });

  it('secrets: accepted and refused alike', async () => {
    const secrets = [
      "<secret ephemeral='no' private='yes'><uuid>0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f</uuid><usage type='iscsi'><target>t</target></usage></secret>",
      "<secret ephemeral='maybe'/>",
      "<secret><usage type='nfs'/></secret>",
      '<notasecret/>',
    ];
    for (const xml of secrets) await same('secret', [xml], xml);
  });

  it('readXml reads a large document on a worker thread and gives what the event loop gives', async () => {
    for (const chars of [INLINE_MAX_CHARS - 100, INLINE_MAX_CHARS + 100, 300_000]) {
      const xml = poolOfSize(chars);
      expect(await outcome(readXml('pool', [xml]))).to.deep.equal(await outcome(readXmlHere('pool', [xml])));
      const broken = xml.replace('</pool>', '');
      const error = await outcome(readXml('pool', [broken]));
      expect(error).to.deep.equal(await outcome(readXmlHere('pool', [broken])));
      expect(error).to.have.property('error').that.has.property('code', 'INVALID_ARGUMENT');
    }
  });
});

describe('coordinator XML worker pool: bounds and cancellation', function () {
  this.timeout(120_000);
  // about a second of parsing within every limit of the reader: 1 MiB of character references
  const big = `<pool type='dir'><name>p</name><source><name>${'&#x41;'.repeat(170_000)}</name></source><target><path>/p</path></target></pool>`;

  it('a read whose call is cancelled stops with CANCELLED, and the next read gets a fresh thread', async () => {
    const pool = new XmlWorkerPool({ size: 1 });
    try {
      const abort = new AbortController();
      const reading = pool.run('pool', [big], abort.signal);
      abort.abort();
      const err = await rejects(reading);
      expect(err).to.be.instanceOf(CancelledError);
      const small = fixture(POOL_IN, 'pool-dir.xml');
      expect(await pool.run('pool', [small])).to.deep.equal(await readXmlHere('pool', [small]));
    } finally {
      await pool.close();
    }
  });

  it('a read already cancelled never starts', async () => {
    const pool = new XmlWorkerPool({ size: 1 });
    try {
      const err = await rejects(pool.run('pool', [big], AbortSignal.abort()));
      expect(err).to.be.instanceOf(CancelledError);
    } finally {
      await pool.close();
    }
  });

  it('beyond its threads and its queue a read is refused at once with RESOURCE_EXHAUSTED', async () => {
    const pool = new XmlWorkerPool({ size: 1, maxWaiting: 1 });
    const abort = new AbortController();
    try {
      const running = pool.run('pool', [big], abort.signal);
      const waiting = pool.run('pool', [big], abort.signal);
      const refused = await rejects(pool.run('pool', [big]));
      expect(refused.code).to.equal('RESOURCE_EXHAUSTED');
      expect(refused.message).to.match(/1 XML documents being read are running and 1 waiting; retry later/);
      abort.abort();
      for (const p of [running, waiting]) expect(await rejects(p)).to.be.instanceOf(CancelledError);
    } finally {
      await pool.close();
    }
  });
});
