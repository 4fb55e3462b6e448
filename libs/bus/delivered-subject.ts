// Who may publish on a subject is what the NATS permissions decide (scripts/nats-config.mjs),
// but JetStream delivers a push consumer's stored messages to its deliver subject as the server
// itself, each with the subject it was stored under, and whoever may create a consumer (an
// event reader) names that deliver subject in a request body no permission sees. A compromised
// agent stores whatever bytes it likes on its own event subjects. So a subscriber that acts on
// what a subject's only publisher sent takes a message only when its subject is one the
// subscription names: a stored event (cistern.events....) that arrives on an agent's request
// subscription, the resync subject or the coordinators' sync subscription is not one.
// (docs/security.md, "The bus")

/** What the services log for such a message, with its subject. */
export const IGNORED_DELIVERY = 'ignored a message on a subject it did not subscribe to (a JetStream delivery of a stored message)';

/**
 * The last token of `subject` when it is exactly `<prefix>.<token>` (one token after the
 * prefix's own), else undefined: `cistern.sync.a` under `cistern.sync` is 'a', a stored event's
 * `cistern.events.b.p.a` is nothing, though its last token is 'a' too.
 */
export function tokenAfter(prefix: string, subject: string): string | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const token = subject.slice(prefix.length + 1);
  return token && !token.includes('.') ? token : undefined;
}
