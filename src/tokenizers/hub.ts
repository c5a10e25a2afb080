/**
 * Download a `tokenizer.json` from the Hugging Face hub (or a mirror) into a local cache, once.
 * URL: `<endpoint>/<repo>/resolve/<revision>/tokenizer.json`; endpoint from `LENPRED_HF_ENDPOINT`
 * (then `HF_ENDPOINT`), default https://huggingface.co. `HF_TOKEN` is sent for gated/private repos.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";

export interface HubOptions {
  endpoint?: string;
  cacheDir?: string;
  /** Request timeout in ms (default 60 s). */
  timeoutMs?: number;
}

export function hfEndpoint(opts: HubOptions = {}): string {
  return (opts.endpoint ?? process.env.LENPRED_HF_ENDPOINT ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
}

/** `$LENPRED_CACHE_DIR`, else `$XDG_CACHE_HOME/lenpred`, else `~/.cache/lenpred`. */
export function lenpredCacheDir(opts: HubOptions = {}): string {
  return opts.cacheDir ?? process.env.LENPRED_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "lenpred");
}

const REPO_RE = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** Parse `org/name[@revision]`; rejects anything that could escape the cache directory. */
export function parseHubName(spec: string): { repo: string; revision: string } {
  const at = spec.lastIndexOf("@");
  const repo = at > 0 ? spec.slice(0, at) : spec;
  const revision = at > 0 ? spec.slice(at + 1) : "main";
  if (!REPO_RE.test(repo) || repo.includes("..") || !/^[\w.-]+$/.test(revision) || revision.includes("..")) {
    throw new LenpredError(`invalid Hugging Face repository name '${spec}' (expected hf:org/name or hf:org/name@revision)`);
  }
  return { repo, revision };
}

/** Path of the cached tokenizer.json for `org/name[@rev]`, downloading it on first use. */
export async function fetchHubTokenizer(spec: string, opts: HubOptions = {}): Promise<string> {
  const { repo, revision } = parseHubName(spec);
  const target = join(lenpredCacheDir(opts), "tokenizers", "hf", ...repo.split("/"), revision, "tokenizer.json");
  if (existsSync(target)) return target;
  const url = `${hfEndpoint(opts)}/${repo}/resolve/${encodeURIComponent(revision)}/tokenizer.json`;
  const headers: Record<string, string> = { "user-agent": "lenpred" };
  if (process.env.HF_TOKEN) headers.authorization = `Bearer ${process.env.HF_TOKEN}`;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000), redirect: "follow" });
  } catch (e) {
    throw new LenpredError(`cannot download ${url} (${(e as Error).message}); set LENPRED_HF_ENDPOINT for a mirror, or pass a local tokenizer.json path`);
  }
  if (!res.ok) {
    const hint = res.status === 404 ? " (no such repository or it has no tokenizer.json)"
      : res.status === 401 || res.status === 403 ? " (gated or private: set HF_TOKEN)" : "";
    throw new LenpredError(`download of ${url} failed: HTTP ${res.status}${hint}`);
  }
  const text = await res.text();
  try {
    const j = JSON.parse(text) as { model?: unknown };
    if (!j || typeof j !== "object" || !j.model) throw new Error("no 'model' section");
  } catch (e) {
    throw new LenpredError(`${url} did not return a tokenizer.json (${(e as Error).message})`);
  }
  await writeFileAtomic(target, text);
  return target;
}
