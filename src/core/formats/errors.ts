/** A file could not be read as a model. Always names the file so messages are actionable. */
export class ModelFormatError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ModelFormatError';
  }
}
