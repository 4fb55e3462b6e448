// libs/xml, loaded on first use: the coordinator runs (structured requests, reads) even
// where the XML library is not built, and answers XML requests UNIMPLEMENTED there.
import { UnimplementedError } from '../../libs/errors/errors.js';

export type XmlLib = typeof import('../../libs/xml/index.js');

let loading: Promise<XmlLib | undefined> | undefined;

export function loadXml(): Promise<XmlLib | undefined> {
  loading ??= import('../../libs/xml/index.js').then(
    (lib) => lib as XmlLib,
    () => undefined,
  );
  return loading;
}

export async function requireXml(what: string): Promise<XmlLib> {
  const lib = await loadXml();
  if (!lib) throw new UnimplementedError(`${what} needs libvirt XML support, which this coordinator build lacks (libs/xml)`);
  return lib;
}
