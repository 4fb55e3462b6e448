// The other agent of the --root lock tests: takes the lock of argv[2] as host argv[3] in a
// process of its own (possibly in another pid namespace), says `locked PID` (its pid as it sees
// it, which is what it names itself by) or the refusal, and holds the lock until it is killed.
import { RootLock } from '../../services/agent/root-lock.js';
import { silentLogger } from '../../libs/log/logger.js';

const [root, host] = process.argv.slice(2);
// as pid 1 of a pid namespace, a signal without a handler is ignored: stop on SIGTERM all the same
process.on('SIGTERM', () => process.exit(0));
RootLock.take(root!, host!, silentLogger).then(
  () => {
    process.stdout.write(`locked ${process.pid}\n`);
    setInterval(() => undefined, 1 << 30);
  },
  (err: unknown) => {
    process.stdout.write(`refused: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
