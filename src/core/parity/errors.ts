import { ReplensError } from '../formats/errors';

/**
 * 'runtime': this RepLens package has no ONNX Runtime that loads here (the message says what is missing).
 * 'io': the models could not be written to the temporary folder ONNX Runtime reads them from.
 */
export type ParityErrorCode = 'input' | 'mismatch' | 'inference' | 'runtime' | 'timeout' | 'crashed' | 'cancelled' | 'io';

/** A parity check could not be run (as opposed to a check that ran and failed); names the file and says why. */
export class ParityError extends ReplensError {
  constructor(
    subject: string,
    reason: string,
    readonly code: ParityErrorCode,
  ) {
    super(subject, reason);
    this.name = 'ParityError';
  }
}
