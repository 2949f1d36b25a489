// Text that came from outside (object names, file contents quoted in reasons)
// is clipped before it goes into a log line: a 100,000-character name made a
// 200,000-character line (issue 12). The marker says how much was cut, so a
// reader knows the value is not whole.

/** Longest piece of outside text a log field carries. */
export const CLIP_LENGTH = 256;

export function clip(text: string, max = CLIP_LENGTH): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}…[${text.length - max} more characters]`;
}

/** clip() for optional fields. */
export function clipOpt(text: string | undefined, max = CLIP_LENGTH): string | undefined {
  return text === undefined ? undefined : clip(text, max);
}
