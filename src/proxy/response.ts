/**
 * Transforms the upstream response passes through on its way to the client, reading the answer length off it.
 * Both are ordinary stream Transforms (default highWaterMark), so a slow client slows the upstream read:
 * nothing is buffered without bound.
 *
 * - `SseTap` (stream: true): parses the SSE events (eventsource-parser), counts content chunks (a running
 *   token estimate, for reservation extensions and TTFT), keeps the answer text (capped) for counting with the
 *   tokenizer when the upstream sends no usage, and reads the `usage` of the final chunk. When the proxy added
 *   `stream_options.include_usage` itself, the usage-only chunk and the `"usage": null` fields are removed so
 *   the client sees the stream it asked for.
 * - `JsonTap` (stream: false): passes the bytes through unchanged and keeps a copy (capped) to parse `usage`.
 */
import { Transform, type TransformCallback } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser";

export interface Usage {
  completion_tokens?: number;
  prompt_tokens?: number;
}

/** Text of the answer(s) in one chat or completion object (chunk or whole response). */
function answerText(obj: unknown, streamed: boolean): string {
  const choices = (obj as { choices?: unknown })?.choices;
  if (!Array.isArray(choices)) return "";
  let out = "";
  for (const c of choices) {
    if (typeof c !== "object" || c === null) continue;
    const ch = c as { text?: unknown; delta?: Record<string, unknown>; message?: Record<string, unknown> };
    if (typeof ch.text === "string") out += ch.text;
    const m = streamed ? ch.delta : ch.message;
    if (m) {
      if (typeof m.content === "string") out += m.content;
      if (typeof m.reasoning_content === "string") out += m.reasoning_content;
    }
  }
  return out;
}

function readUsage(obj: unknown): Usage | undefined {
  const u = (obj as { usage?: unknown })?.usage;
  if (typeof u !== "object" || u === null) return undefined;
  const { completion_tokens, prompt_tokens } = u as Record<string, unknown>;
  return {
    completion_tokens: typeof completion_tokens === "number" ? completion_tokens : undefined,
    prompt_tokens: typeof prompt_tokens === "number" ? prompt_tokens : undefined,
  };
}

export interface TapResult {
  usage?: Usage;
  /** The answer text (possibly truncated at the cap: then `textComplete` is false). */
  text: string;
  textComplete: boolean;
  id?: string;
  /** SSE: the upstream sent `data: [DONE]` (a complete stream). JSON: parsed fine. */
  complete: boolean;
}

export interface SseTapOptions {
  /** Remove what the proxy's own `include_usage` added. */
  stripUsage: boolean;
  /** Most answer characters kept for counting. */
  maxTextChars: number;
  /** Called on every chunk that carries answer text: running chunk count (≈ tokens). */
  onContent?: (chunks: number) => void;
}

export class SseTap extends Transform {
  readonly result: TapResult = { text: "", textComplete: true, complete: false };
  private readonly decoder = new StringDecoder("utf8");
  private readonly parser: EventSourceParser;
  private chunks = 0;
  private out: string[] = [];

  constructor(private readonly opts: SseTapOptions) {
    super();
    this.parser = createParser({ onEvent: (e) => this.onEvent(e) });
  }

  private onEvent(e: EventSourceMessage): void {
    let data = e.data;
    if (data === "[DONE]") {
      this.result.complete = true;
    } else {
      let obj: Record<string, unknown> | undefined;
      try {
        obj = JSON.parse(data) as Record<string, unknown>;
      } catch {
        obj = undefined;
      }
      if (obj && typeof obj === "object") {
        if (typeof obj.id === "string") this.result.id ??= obj.id;
        const usage = readUsage(obj);
        if (usage) this.result.usage = usage;
        const text = answerText(obj, true);
        if (text !== "") {
          this.chunks++;
          if (this.result.text.length + text.length <= this.opts.maxTextChars) this.result.text += text;
          else this.result.textComplete = false;
          this.opts.onContent?.(this.chunks);
        }
        if (this.opts.stripUsage && "usage" in obj) {
          // The usage-only chunk the client did not ask for: drop it; elsewhere drop the added `usage: null`.
          if (Array.isArray(obj.choices) && obj.choices.length === 0) return;
          delete obj.usage;
          data = JSON.stringify(obj);
        }
      }
    }
    let frame = "";
    if (e.event) frame += `event: ${e.event}\n`;
    if (e.id !== undefined) frame += `id: ${e.id}\n`;
    for (const line of data.split("\n")) frame += `data: ${line}\n`;
    this.out.push(frame + "\n");
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parser.feed(this.decoder.write(chunk));
    this.flushOut();
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.parser.feed(this.decoder.end());
    this.flushOut();
    cb();
  }

  private flushOut(): void {
    if (this.out.length === 0) return;
    this.push(this.out.join(""));
    this.out = [];
  }
}

export class JsonTap extends Transform {
  readonly result: TapResult = { text: "", textComplete: true, complete: false };
  private parts: Buffer[] = [];
  private bytes = 0;
  private overflow = false;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.overflow) {
      this.bytes += chunk.length;
      if (this.bytes > this.maxBytes) {
        this.overflow = true;
        this.parts = [];
      } else this.parts.push(chunk);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.overflow) {
      try {
        const obj = JSON.parse(Buffer.concat(this.parts).toString("utf8")) as Record<string, unknown>;
        this.result.usage = readUsage(obj);
        this.result.text = answerText(obj, false);
        if (typeof obj.id === "string") this.result.id = obj.id;
        this.result.complete = true;
      } catch {
        // Not JSON: nothing to observe, the bytes went through anyway.
      }
    }
    this.parts = [];
    cb();
  }
}
