// A worker thread of the coordinator's XML readers (xml-workers.ts): reads one document at a
// time with the very readers the event loop uses (xml-reads.ts) and answers with the result,
// or with the error in its wire form ({code, message, details}), which the pool turns back
// into the same typed error.
import { parentPort } from 'node:worker_threads';
import { asCisternError } from '../../libs/errors/errors.js';
import { isXmlReadKind, readXmlHere, type XmlReadArgs } from './xml-reads.js';
import type { XmlWorkerReply, XmlWorkerRequest } from './xml-workers.js';

const port = parentPort;
if (!port) throw new Error('xml-worker.js runs as a worker thread of the coordinator (xml-workers.ts)');

port.on('message', (request: XmlWorkerRequest) => {
  void answer(request).then((reply) => port.postMessage(reply));
});

async function answer(request: XmlWorkerRequest): Promise<XmlWorkerReply> {
  try {
    if (!isXmlReadKind(request.kind)) throw new Error(`unknown kind of XML document '${String(request.kind)}'`);
    // the arguments are what XmlWorkerPool.run was given for this kind (typed there)
    return { ok: true, value: await readXmlHere(request.kind, request.args as XmlReadArgs<typeof request.kind>) };
  } catch (err) {
    const e = asCisternError(err);
    return { ok: false, error: { code: e.code, message: e.message, details: e.details, name: e.name } };
  }
}
