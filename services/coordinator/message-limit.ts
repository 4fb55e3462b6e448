// The largest request message the coordinator reads. grpc-js reads a message whole before any
// handler sees it, so each open Session stream and each call admitted before its request is read
// (admit-before-read.ts) may hold one unfinished message of up to this size: one client at most
// --max-sessions-per-client + --max-calls-per-client of them, about 384 MiB with the defaults
// (32 + 64). At 16 MiB, with 256 sessions a client, one viewer could make the coordinator hold
// 5 GiB (40 sessions and 64 calls took it up 1.77 GB). The largest request a client needs is an
// upload data message (MAX_UPLOAD_CHUNK, 4 MiB); a document is at most 1 MiB, a secret value
// 64 KiB. The 1 KiB over 4 MiB is the message's own framing (field tags and lengths), so that an
// upload data message a little too long still gets the upload's own error, naming its limit.
import { MAX_UPLOAD_CHUNK } from './handlers/streams.js';

export const MAX_REQUEST_MESSAGE = MAX_UPLOAD_CHUNK + 1024;
