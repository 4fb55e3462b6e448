// The limits every libvirt document Cistern accepts is held to, and a structured definition
// sent instead of one (services/coordinator/validate.ts): no import, so the coordinator checks
// them without loading the XML reader.

/** Largest document accepted, in bytes (UTF-8). */
export const MAX_XML_BYTES = 1024 * 1024;
/** Deepest element nesting accepted (the root element is depth 1). */
export const MAX_XML_DEPTH = 64;
/**
 * Most elements, and most attributes (namespace declarations included), a document may have.
 * libvirt's storage documents have a few dozen of each (a pool with a hundred <device>s would
 * have a few hundred). fast-xml-parser spends ~10 us per node: a 1 MiB document of 250,000
 * empty elements took 2.3 s; at these limits a document reads in well under a second, and the
 * element tree stays small. Counted before parsing, in a few milliseconds per MiB.
 */
export const MAX_XML_ELEMENTS = 10_000;
export const MAX_XML_ATTRIBUTES = 10_000;
