#!/usr/bin/env node
// Writes a nats-server configuration with one user per agent and one for the
// coordinators, each allowed only its own subjects (docs/security.md, "The bus").
//
//   node scripts/nats-config.mjs --hosts a,b [--out DIR] [--coordinator-user NAME] [--readers r1,r2]
//
// DIR (default ./nats-auth) gets:
//   nats-auth.conf            `authorization { users = [...] }`: include it from your
//                              nats-server.conf, or start `nats-server -js -c DIR/nats-auth.conf`
//   coordinator.pass          the coordinator's password (--nats-user coordinator --nats-pass-file ...)
//   agent-<host>.pass         each agent's password (--nats-user agent-<host> --nats-pass-file ...)
//   <reader>.pass             with --readers: each event reader's password
// Existing password files are kept, so re-running with more hosts adds users without
// changing the others. Every file is mode 600. The config holds the passwords in clear
// (nats-server compares them); keep it readable by the nats-server user only.
//
// What an agent for host H may do:
//   receive    cistern.agent.H.>            its requests (and upload data, cancels)
//              cistern.control.resync       a coordinator asking for a full sync
//              cistern.download.H.*.ack     acknowledgements of its download streams
//              _INBOX_agent_H.>             replies to its own requests (JetStream acks, KV reads)
//   publish    cistern.events.H.*.a         its events (JetStream stream CISTERN_EVENTS), under the
//                                            agent origin only: the subjects ending in .c are the
//                                            coordinators' (host deleted, pool undefined ...), and
//                                            readers take those kinds from there only
//              cistern.heartbeat.H, cistern.sync.H
//              cistern.secrets.H            asking for its autostart pools' CHAP secrets
//              cistern.download.H.>         download data it serves
//              cistern.agent.H.Ping         at start: is another agent serving H already?
//              cistern.reply.H.>             its answers to a coordinator's requests
//              _INBOX_agent_H.>              its answer to another agent's ping of host H
//              (no allow_responses: with it, the agent could send itself a message naming
//              any subject as its reply, cistern.agent.B.createPool say, and "answer" it)
//              JetStream API: $JS.API.INFO; stream info of CISTERN_EVENTS and the catalog
//              (KV_cistern-catalog); direct get of its own catalog keys, by subject only
//              ($JS.API.DIRECT.GET.KV_cistern-catalog.$KV.cistern-catalog.pools.H.>)
//   nothing else: no other host's subjects, no secrets bucket, no other inboxes, and no
//   consumer API at all (so no way to touch another host's or a coordinator's consumers).
//
// What an event reader (--readers NAME) may do: read the event stream with consumers of its
// own, as a NATS subscriber of DESIGN.md's "NATS subscribers may read the same stream
// directly", and nothing else:
//   publish    $JS.API.INFO, stream info of CISTERN_EVENTS, consumer create, info and next
//              message on CISTERN_EVENTS (an ordered pull consumer, as docs/events.md shows)
//   receive    _INBOX_reader_NAME.>          its replies and messages (connect with that
//                                            inboxPrefix; the default _INBOX. is refused,
//                                            so it cannot listen to a coordinator's replies)
// No publish on any cistern.* subject, no catalog, no secrets. A consumer name is one
// subject token, so the consumer rights cover every consumer of CISTERN_EVENTS (see below):
// a reader can inspect or pull from a coordinator's event consumers (disturbing it: it
// restarts its reader), never delete them, and it sees no more than the events themselves.
//
// An agent reads its catalog entries (autostart and restore at boot: list(host) in
// libs/bus/catalog.ts) without a consumer: the keys from the catalog's stream info with a
// subjects filter, then a direct get of each key's last message, on the subject-suffixed
// form that names the key. Why not the alternatives, as nats-server 2.9.10 behaves:
//   - consumers: a consumer name is one subject token and a permission wildcard matches
//     whole tokens, so "its own consumers" could only be `*` (or one fixed name per agent,
//     which concurrent reads or a consumer left by a crash collide on); CONSUMER.DELETE/INFO
//     on KV_cistern-catalog.* let any agent delete or inspect every consumer on the catalog,
//     the coordinators' catalog watches and other agents' reads included;
//   - walking the keys with direct get `seq` + `next_by_subj`: the server takes that body on
//     the plain $JS.API.DIRECT.GET.KV_cistern-catalog subject only (a body on the suffixed
//     form is answered 408 Bad Request), and a permission cannot see the body: it would read
//     every host's entries.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EVENT_STREAM = 'CISTERN_EVENTS';
export const CATALOG_BUCKET = 'cistern-catalog';
const HOST_ID = /^[A-Za-z0-9_-]{1,64}$/;
const USER = /^[A-Za-z0-9_-]{1,64}$/;

/** The inbox prefix an agent must use (cistern-agent sets it from its host id). */
export const agentInboxPrefix = (host) => `_INBOX_agent_${host}`;

export function agentPermissions(host) {
  if (!HOST_ID.test(host) || host.startsWith('-')) throw new Error(`host id '${host}' is not valid: 1-64 of A-Z a-z 0-9 _ -`);
  const kvStream = `KV_${CATALOG_BUCKET}`;
  const ownKeys = `$KV.${CATALOG_BUCKET}.pools.${host}.>`;
  return {
    publish: {
      allow: [
        // its own events as an agent (docs/bus.md, item 1): not the coordinators' .c subjects
        `cistern.events.${host}.*.a`,
        `cistern.heartbeat.${host}`,
        `cistern.sync.${host}`,
        `cistern.secrets.${host}`,
        `cistern.download.${host}.>`,
        // at start, a ping of its own host id: another agent answering it means do not start
        `cistern.agent.${host}.Ping`,
        // its answers: to a coordinator's request (on the reply subject named after its host,
        // libs/bus/reply-inbox.ts), and to the ping of another agent of its host id
        `cistern.reply.${host}.>`,
        `${agentInboxPrefix(host)}.>`,
        '$JS.API.INFO',
        `$JS.API.STREAM.INFO.${EVENT_STREAM}`,
        `$JS.API.STREAM.INFO.${kvStream}`,
        // its own catalog keys' last values; no consumer API (see the top of this file)
        `$JS.API.DIRECT.GET.${kvStream}.${ownKeys}`,
      ],
    },
    subscribe: {
      allow: [`cistern.agent.${host}.>`, 'cistern.control.resync', `cistern.download.${host}.*.ack`, `${agentInboxPrefix(host)}.>`],
    },
    // no allow_responses: it would let the agent answer any message it receives on whatever
    // subject that message names as its reply, and the agent can send itself messages (its
    // own Ping) naming another host's request, sync or secrets subject
  };
}

/** The inbox prefix an event reader must use. */
export const readerInboxPrefix = (name) => `_INBOX_reader_${name}`;

export function readerPermissions(name) {
  if (!USER.test(name) || name.startsWith('-')) throw new Error(`reader name '${name}' is not valid: 1-64 of A-Z a-z 0-9 _ -`);
  return {
    publish: {
      allow: [
        '$JS.API.INFO',
        `$JS.API.STREAM.INFO.${EVENT_STREAM}`,
        `$JS.API.CONSUMER.CREATE.${EVENT_STREAM}`,
        `$JS.API.CONSUMER.CREATE.${EVENT_STREAM}.>`,
        `$JS.API.CONSUMER.INFO.${EVENT_STREAM}.>`,
        `$JS.API.CONSUMER.MSG.NEXT.${EVENT_STREAM}.>`,
      ],
    },
    subscribe: { allow: [`${readerInboxPrefix(name)}.>`] },
  };
}

const coordinatorPermissions = () => ({ publish: { allow: ['>'] }, subscribe: { allow: ['>'] } });

/** nats-server config text (JSON is valid nats-server config syntax). */
export function natsAuthConfig({ hosts, passwords, coordinatorUser = 'coordinator', readers = [] }) {
  const users = [
    { user: coordinatorUser, password: passwords[coordinatorUser], permissions: coordinatorPermissions() },
    ...hosts.map((h) => ({ user: `agent-${h}`, password: passwords[`agent-${h}`], permissions: agentPermissions(h) })),
    ...readers.map((r) => ({ user: r, password: passwords[r], permissions: readerPermissions(r) })),
  ];
  for (const u of users) if (!u.password) throw new Error(`no password for ${u.user}`);
  return `# Written by scripts/nats-config.mjs for hosts: ${hosts.join(', ')}\n# One user per agent, each limited to its own subjects. Keep this file mode 600.\nauthorization ${JSON.stringify({ users }, null, 2)}\n`;
}

function writePrivate(path, text) {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Writes DIR/nats-auth.conf and the password files; returns their paths. */
export function writeNatsAuth({ hosts, out, coordinatorUser = 'coordinator', readers = [] }) {
  if (!USER.test(coordinatorUser)) throw new Error(`user name '${coordinatorUser}' is not valid`);
  if (hosts.length === 0) throw new Error('no hosts given (--hosts a,b,...)');
  if (new Set(hosts).size !== hosts.length) throw new Error('a host is listed twice');
  const names = [coordinatorUser, ...hosts.map((h) => `agent-${h}`), ...readers];
  if (new Set(names).size !== names.length) throw new Error('a reader has the name of another user');
  for (const r of readers) readerPermissions(r); // checks the name
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const passwords = {};
  const files = {};
  for (const user of names) {
    const file = join(out, `${user}.pass`);
    if (existsSync(file)) {
      passwords[user] = readFileSync(file, 'utf8').split('\n')[0].trim();
    } else {
      passwords[user] = randomBytes(24).toString('base64url');
      writePrivate(file, `${passwords[user]}\n`);
    }
    files[user] = file;
  }
  const config = join(out, 'nats-auth.conf');
  writePrivate(config, natsAuthConfig({ hosts, passwords, coordinatorUser, readers }));
  return { config, passwordFiles: files };
}

function main(argv) {
  let hosts;
  let out = 'nats-auth';
  let coordinatorUser = 'coordinator';
  let readers = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--hosts') hosts = v().split(',').map((h) => h.trim()).filter(Boolean);
    else if (a === '--out') out = v();
    else if (a === '--coordinator-user') coordinatorUser = v();
    else if (a === '--readers') readers = v().split(',').map((r) => r.trim()).filter(Boolean);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node scripts/nats-config.mjs --hosts a,b,... [--out DIR] [--coordinator-user NAME] [--readers NAME,...]\n');
      return 0;
    } else throw new Error(`unknown option ${a}`);
  }
  if (!hosts) throw new Error('--hosts is required');
  const r = writeNatsAuth({ hosts, out: resolve(out), coordinatorUser, readers });
  process.stdout.write(`${r.config}\n${Object.entries(r.passwordFiles).map(([u, f]) => `  ${u}: ${f}`).join('\n')}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    process.stderr.write(`nats-config: ${err.message}\n`);
    process.exit(2);
  }
}
