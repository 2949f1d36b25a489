// The one error type of configuration: it names the flag or file field at fault.

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The config file the field is in, when it came from one. */
  readonly source: string | undefined;

  /**
   * @param field the flag ("--proxy-mode") or file field ("bpf.maglevTableSize") at fault,
   *   or "" when the problem is not tied to one (an unreadable file).
   * @param detail what is wrong with it.
   */
  constructor(readonly field: string, readonly detail: string, options: { cause?: unknown; source?: string } = {}) {
    super([options.source, field, detail].filter(Boolean).join(': '), { cause: options.cause });
    this.source = options.source;
  }

  /** The same error, located in a file. */
  in(source: string): ConfigError {
    return new ConfigError(this.field, this.detail, { source, cause: this.cause });
  }
}
