import { expect } from 'chai';
import { CommandFailedError } from '../../../libs/errors/errors.js';
import { PBKDF_CALIBRATION_FAILURE, QEMU_IMG_CALIBRATION_ATTEMPTS, runQemuImgCalibrated } from '../../../libs/backends/qemu-img-run.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';

const argv = ['qemu-img', 'create', '-f', 'luks', '--', '/p/v', '8192K'];
const calibrationFailure = () => new CommandFailedError(argv, 1, `qemu-img: /p/v: ${PBKDF_CALIBRATION_FAILURE}\n`);

describe('qemu-img LUKS calibration retry', () => {
  it('runs the same argv again after a PBKDF calibration failure and returns its success', async () => {
    const runner = new RecordingRunner().on(['qemu-img'], calibrationFailure(), 2).on(['qemu-img'], { stdout: 'ok' });
    const result = await runQemuImgCalibrated(runner, argv);
    expect(result.stdout).to.equal('ok');
    expect(runner.argvs).to.deep.equal([argv, argv, argv]);
  });

  it('gives up after QEMU_IMG_CALIBRATION_ATTEMPTS calibration failures with qemu-img\'s own error', async () => {
    const runner = new RecordingRunner().on(['qemu-img'], calibrationFailure());
    const err = await runQemuImgCalibrated(runner, argv).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CommandFailedError);
    expect((err as Error).message).to.contain(PBKDF_CALIBRATION_FAILURE);
    expect(QEMU_IMG_CALIBRATION_ATTEMPTS).to.equal(100);
    expect(runner.argvs).to.have.length(QEMU_IMG_CALIBRATION_ATTEMPTS);
  });

  it('does not retry any other failure', async () => {
    const runner = new RecordingRunner().on(['qemu-img'], new CommandFailedError(argv, 1, 'qemu-img: Could not create: No space left on device'));
    const err = await runQemuImgCalibrated(runner, argv).catch((e: unknown) => e);
    expect((err as Error).message).to.contain('No space left');
    expect(runner.argvs).to.have.length(1);
  });

  it('does not retry once the call is cancelled', async () => {
    const ac = new AbortController();
    const runner = new RecordingRunner().on(['qemu-img'], () => {
      ac.abort();
      throw calibrationFailure();
    });
    await runQemuImgCalibrated(runner, argv, { signal: ac.signal }).catch(() => undefined);
    expect(runner.argvs).to.have.length(1);
  });
});
