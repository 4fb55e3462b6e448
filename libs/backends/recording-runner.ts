// A CommandRunner for unit tests: records every argv exactly and answers from a script.
// Rules match by argv prefix or by a predicate; the first matching rule (in the order
// added) answers. A rule's answer is a result, an error to throw, or a handler function
// (which may also act, e.g. create the file qemu-img would have created).
import { CommandFailedError } from '../errors/errors.js';
import type { CommandRunner, RunOptions, RunResult } from './runner.js';

export interface RecordedCall {
  argv: string[];
  options: RunOptions;
}

export type ScriptedAnswer =
  | Partial<RunResult>
  | Error
  | ((argv: readonly string[], options: RunOptions) => Partial<RunResult> | void | Promise<Partial<RunResult> | void>);

interface Rule {
  match: (argv: readonly string[]) => boolean;
  answer: ScriptedAnswer;
  /** Remaining uses; undefined = unlimited. */
  times?: number;
}

export interface RecordingRunnerOptions {
  /** Throw for a command no rule matches (default false: answer exit 0, empty output). */
  strict?: boolean;
}

export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  private readonly rules: Rule[] = [];
  private readonly strict: boolean;

  constructor(options: RecordingRunnerOptions = {}) {
    this.strict = options.strict ?? false;
  }

  /** Answers commands whose argv starts with `prefix`. */
  on(prefix: readonly string[], answer: ScriptedAnswer, times?: number): this {
    const p = [...prefix];
    this.rules.push({ match: (argv) => p.length <= argv.length && p.every((a, i) => argv[i] === a), answer, times });
    return this;
  }

  /** Answers commands the predicate accepts. */
  onMatch(match: (argv: readonly string[]) => boolean, answer: ScriptedAnswer, times?: number): this {
    this.rules.push({ match, answer, times });
    return this;
  }

  /** The argv of every call, in order. */
  get argvs(): string[][] {
    return this.calls.map((c) => c.argv);
  }

  /** Calls whose argv[0] is `program`. */
  callsOf(program: string): string[][] {
    return this.argvs.filter((a) => a[0] === program);
  }

  reset(): void {
    this.calls.length = 0;
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv: [...argv], options });
    const rule = this.rules.find((r) => (r.times === undefined || r.times > 0) && r.match(argv));
    if (!rule) {
      if (this.strict) throw new CommandFailedError(argv, 127, `recording runner: no scripted answer for: ${argv.join(' ')}`);
      return { stdout: '', stderr: '', exitCode: 0 };
    }
    if (rule.times !== undefined) rule.times--;
    let answer = rule.answer;
    if (answer instanceof Error) throw answer;
    if (typeof answer === 'function') answer = (await answer(argv, options)) ?? {};
    const result: RunResult = { stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', exitCode: answer.exitCode ?? 0 };
    if (result.stdout) options.onStdout?.(result.stdout);
    const ok = options.okExitCodes ?? [0];
    if (!ok.includes(result.exitCode)) throw new CommandFailedError(argv, result.exitCode, result.stderr || result.stdout);
    return result;
  }
}
