/** Request limits of `lenpred serve` and their defaults (all overridable from the CLI and buildServer). */
import { DEFAULT_MAX_PROMPT_CHARS } from "../predictor/length-predictor.js";

export interface ServeLimits {
  /** Largest request body in bytes (larger → 413). */
  bodyBytes: number;
  /** Most prompts in one `{prompts: [...]}` request. */
  maxPrompts: number;
  /** Longest prompt, and longest chat message content, in characters (Unicode code points). */
  maxPromptChars: number;
  /** Most messages in one chat body. */
  maxMessages: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  bodyBytes: 1 << 20,
  maxPrompts: 64,
  maxPromptChars: DEFAULT_MAX_PROMPT_CHARS,
  maxMessages: 256,
};

export function resolveLimits(partial: Partial<ServeLimits> = {}): ServeLimits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  for (const [k, v] of Object.entries(limits)) {
    if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`limit ${k} must be an integer >= 1, got ${v}`);
  }
  return limits;
}
