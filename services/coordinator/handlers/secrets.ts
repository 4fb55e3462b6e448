// The Secret API: DefineSecret (structured or libvirt XML), SetSecretValue, GetSecret,
// ListSecrets, UndefineSecret. No call returns a value; no log line or error carries one.
import { FailedPreconditionError, InvalidArgumentError } from '../../../libs/errors/errors.js';
import {
  Secret,
  type DefineSecretRequest,
  type GetSecretRequest,
  type ListSecretsRequest,
  type ListSecretsResponse,
  type SetSecretValueRequest,
  type UndefineSecretRequest,
  type UndefineSecretResponse,
} from '../../../libs/proto/cistern/v1/storage.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import type { SecretStore } from '../secrets/store.js';
import { checkPageRequest, pageOf } from '../pagination.js';
import { checkRequestId, validateAgainstSchema } from '../validate.js';
import { SchemaValidator } from '../schema-validator.js';
import { readXml } from '../xml-reader.js';

const MAX_SECRET_XML = 64 * 1024;

function store(svc: CoordinatorServices): SecretStore {
  if (!svc.secrets) throw new FailedPreconditionError('the secret store is not open on this coordinator');
  return svc.secrets;
}

export async function defineSecret(svc: CoordinatorServices, ctx: CallContext, req: DefineSecretRequest): Promise<Secret> {
  checkRequestId(req.requestId);
  if (req.secret && req.xml) throw new InvalidArgumentError('xml', 'give either secret or xml, not both');
  if (req.xml && Buffer.byteLength(req.xml, 'utf8') > MAX_SECRET_XML) throw new InvalidArgumentError('xml', `document is larger than ${MAX_SECRET_XML} bytes`);
  await validateAgainstSchema(svc.schemas ?? new SchemaValidator(), { validate: req.validate, xml: req.xml, definition: req.secret }, 'secret', ctx.signal);
  const def = req.xml ? await readXml('secret', [req.xml], ctx.signal) : req.secret;
  return store(svc).define(def!);
}

export async function setSecretValue(svc: CoordinatorServices, _ctx: CallContext, req: SetSecretValueRequest): Promise<Secret> {
  return store(svc).setValue(req.name, req.value);
}

export async function getSecret(svc: CoordinatorServices, _ctx: CallContext, req: GetSecretRequest): Promise<Secret> {
  return store(svc).get(req.name);
}

export async function listSecrets(svc: CoordinatorServices, _ctx: CallContext, req: ListSecretsRequest): Promise<ListSecretsResponse> {
  checkPageRequest(req, 'secrets');
  // a description may be long: the page is held to what a client accepts
  const page = pageOf(await store(svc).list(), (s) => s.uuid, req, 'secrets', (s) => Secret.encode(s).finish().length);
  return { secrets: page.items, nextPageToken: page.nextPageToken };
}

export async function undefineSecret(svc: CoordinatorServices, _ctx: CallContext, req: UndefineSecretRequest): Promise<UndefineSecretResponse> {
  await store(svc).undefine(req.name);
  return {};
}
