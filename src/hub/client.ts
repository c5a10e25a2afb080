/**
 * One Hugging Face hub client for everything lenpred fetches (tokenizers, `--init` checkpoints, `--model` model
 * repositories), following huggingface_hub's protocol and cache so that files are shared with Python tools:
 *
 *   - `GET {endpoint}/api/models/{repo}/revision/{rev}` → `{sha, siblings: [{rfilename}]}` (the commit and its files);
 *   - `HEAD {endpoint}/{repo}/resolve/{commit}/{file}` → `X-Repo-Commit`, `X-Linked-Etag` (LFS: the sha256 of the
 *     content) or `ETag` (git blob sha1), `X-Linked-Size`/`Content-Length`; LFS files redirect to a CDN URL;
 *   - cache `{HF_HUB_CACHE}/models--{org}--{name}/` with `blobs/{etag}`, `snapshots/{commit}/{file}` (a symlink
 *     to the blob), `refs/{revision}` (the commit a branch or tag pointed at when last seen).
 *
 * Downloads go to `blobs/{etag}.incomplete`, resume with `Range` after an interruption, are checked against the
 * etag (sha256 or git sha1) and size, fsynced, then renamed: a blob is whole or absent. `HF_HUB_OFFLINE=1`
 * resolves from the cache only; a network failure falls back to the cache when the files are there.
 * Environment: `HF_ENDPOINT` (`LENPRED_HF_ENDPOINT` wins, for compatibility), `HF_TOKEN` (else `HF_TOKEN_PATH` or
 * `$HF_HOME/token`), `HF_HUB_CACHE` (else `$HF_HOME/hub`, `HF_HOME` defaulting to `$XDG_CACHE_HOME/huggingface`
 * or `~/.cache/huggingface`), `HF_HUB_OFFLINE`.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, symlink, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";
import { tempName, writeFileAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";

export interface HubOptions {
  /** Hub URL (default `LENPRED_HF_ENDPOINT`, `HF_ENDPOINT`, https://huggingface.co). */
  endpoint?: string;
  /** The hub cache directory (default `HF_HUB_CACHE`, `$HF_HOME/hub`). */
  cacheDir?: string;
  /** Access token (default `HF_TOKEN`, the token file). */
  token?: string;
  /** Cache only (default `HF_HUB_OFFLINE` = 1/true/yes/on). */
  offline?: boolean;
  /** Per-request timeout in ms (default 60 s; a download's body may take longer). */
  timeoutMs?: number;
}

export interface RepoRef {
  repo: string;
  revision: string;
}

const truthy = (v: string | undefined) => v !== undefined && ["1", "true", "yes", "on"].includes(v.toLowerCase());

function hfEndpoint(opts: HubOptions = {}): string {
  return (opts.endpoint ?? process.env.LENPRED_HF_ENDPOINT ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
}

function hfHome(): string {
  return process.env.HF_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "huggingface");
}

export function hubCacheDir(opts: HubOptions = {}): string {
  return opts.cacheDir ?? process.env.HF_HUB_CACHE ?? process.env.HUGGINGFACE_HUB_CACHE ?? join(hfHome(), "hub");
}

function hubOffline(opts: HubOptions = {}): boolean {
  return opts.offline ?? truthy(process.env.HF_HUB_OFFLINE);
}

function hubToken(opts: HubOptions): string | undefined {
  if (opts.token) return opts.token;
  if (process.env.HF_TOKEN) return process.env.HF_TOKEN;
  const file = process.env.HF_TOKEN_PATH ?? join(hfHome(), "token");
  try {
    return readFileSync(file, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

const NAME = /^[A-Za-z0-9][\w.-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Parse `org/name[@revision]` or a canonical `name[@revision]` (e.g. `distilbert-base-uncased`), with an optional
 * `hf:` prefix; rejects anything that could escape the cache directory.
 */
export function parseRepoSpec(spec: string): RepoRef {
  const s = spec.startsWith("hf:") ? spec.slice(3) : spec;
  const at = s.lastIndexOf("@");
  const repo = at > 0 ? s.slice(0, at) : s;
  const revision = at > 0 ? s.slice(at + 1) : "main";
  const parts = repo.split("/");
  const ok = parts.length <= 2 && parts.every((p) => NAME.test(p) && !p.includes("..")) &&
    /^[\w.\-/]+$/.test(revision) && !revision.split("/").some((p) => p === "" || p === "." || p === "..");
  if (!ok) throw new LenpredError(`invalid Hugging Face repository '${spec}' (expected org/name, org/name@revision or hf:org/name)`);
  return { repo, revision };
}

/** `models--org--name` under the cache. */
export function repoCacheDir(repo: string, opts: HubOptions = {}): string {
  return join(hubCacheDir(opts), `models--${repo.split("/").join("--")}`);
}

function checkFileName(file: string): void {
  if (file.startsWith("/") || file.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new LenpredError(`refusing hub file name '${file}'`);
  }
}

/** What a `resolve` HEAD says about a file. */
interface FileMeta {
  commit: string;
  etag: string;
  size?: number;
  /** Where to GET it (the CDN location of an LFS file, else the resolve URL). */
  url: string;
}

class HubHttp {
  readonly endpoint: string;
  private readonly token?: string;
  constructor(private readonly opts: HubOptions) {
    this.endpoint = hfEndpoint(opts);
    this.token = hubToken(opts);
  }

  headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { "user-agent": "lenpred (huggingface_hub-compatible)", ...extra };
    // The token goes to the hub only, never to the CDN a download redirects to.
    if (this.token && new URL(url).origin === new URL(this.endpoint).origin) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs ?? 60_000;
  }

  /** `signal` replaces the whole-request timeout (downloads use an idle timeout instead). */
  async fetch(url: string, init: { method?: string; headers?: Record<string, string>; redirect?: RequestRedirect; signal?: AbortSignal } = {}): Promise<Response> {
    try {
      return await fetch(url, {
        method: init.method ?? "GET", headers: this.headers(url, init.headers), redirect: init.redirect ?? "follow",
        signal: init.signal ?? AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new HubUnreachable(`cannot reach ${url} (${(e as Error).cause ? String((e as Error).cause) : (e as Error).message})`);
    }
  }

  failure(res: Response, what: string, ref: RepoRef): LenpredError {
    const code = res.headers.get("x-error-code");
    const hint = res.status === 401 || res.status === 403 ? " (gated or private repository: set HF_TOKEN)"
      : code === "RepoNotFound" ? " (no such repository)" : code === "RevisionNotFound" ? ` (no revision '${ref.revision}')`
      : code === "EntryNotFound" ? " (no such file in the repository)" : res.status === 404 ? " (not found)" : "";
    return new LenpredError(`${what}: HTTP ${res.status}${hint}`);
  }
}

class HubUnreachable extends LenpredError {}

/** The commit a revision names, from the cache: itself if it is a commit hash, else `refs/{revision}`. */
async function cachedCommit(ref: RepoRef, opts: HubOptions): Promise<string | undefined> {
  if (COMMIT.test(ref.revision)) return ref.revision;
  try {
    return (await readFile(join(repoCacheDir(ref.repo, opts), "refs", ref.revision), "utf8")).trim();
  } catch {
    return undefined;
  }
}

/** Repository info at a revision: its commit and file list (`/api/models/{repo}/revision/{rev}`). */
async function hubRepoInfo(ref: RepoRef, opts: HubOptions = {}): Promise<{ commit: string; files: string[] }> {
  const http = new HubHttp(opts);
  const url = `${http.endpoint}/api/models/${ref.repo}/revision/${encodeURIComponent(ref.revision)}`;
  const res = await http.fetch(url);
  if (!res.ok) throw http.failure(res, `${ref.repo}@${ref.revision}: ${url}`, ref);
  let info: { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  try {
    info = (await res.json()) as typeof info;
  } catch (e) {
    throw new LenpredError(`${url} did not return JSON (${(e as Error).message})`);
  }
  if (typeof info.sha !== "string" || !COMMIT.test(info.sha)) throw new LenpredError(`${url}: no commit sha in the answer`);
  const files = (info.siblings ?? []).map((s) => s.rfilename).filter((f): f is string => typeof f === "string");
  return { commit: info.sha, files };
}

async function headFile(http: HubHttp, ref: RepoRef, file: string): Promise<FileMeta | "missing"> {
  let url = `${http.endpoint}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
  // Like huggingface_hub: follow relative redirects (renamed repositories), keep an absolute one (the CDN) as the
  // download URL; the metadata headers are on the hub's own answer.
  for (let hops = 0; ; hops++) {
    const res = await http.fetch(url, { method: "HEAD", redirect: "manual", headers: { "accept-encoding": "identity" } });
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location && hops < 5) {
      const next = new URL(location, url);
      if (!/^https?:/.test(location)) { url = next.href; continue; }
      return metaFrom(res, next.href, url);
    }
    if (res.status === 404 && res.headers.get("x-error-code") === "EntryNotFound") return "missing";
    if (!res.ok) throw http.failure(res, `${ref.repo}@${ref.revision}: ${file}`, ref);
    return metaFrom(res, url, url);
  }
}

function metaFrom(res: Response, downloadUrl: string, url: string): FileMeta {
  const commit = res.headers.get("x-repo-commit");
  const etag = (res.headers.get("x-linked-etag") ?? res.headers.get("etag") ?? "").replace(/^W\//, "").replace(/"/g, "");
  const sizeHeader = res.headers.get("x-linked-size") ?? res.headers.get("content-length");
  if (!commit || !COMMIT.test(commit)) throw new LenpredError(`${url}: the server sent no X-Repo-Commit (not a Hugging Face hub endpoint?)`);
  if (!etag || !/^[\w.-]+$/.test(etag)) throw new LenpredError(`${url}: the server sent no usable ETag`);
  return { commit, etag, size: sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined, url: downloadUrl };
}

/** Verify a finished download against its etag: sha256 (LFS) or git blob sha1 (regular files), and its size. */
async function verifyBlob(path: string, meta: FileMeta): Promise<void> {
  const size = (await stat(path)).size;
  if (meta.size !== undefined && size !== meta.size) throw new LenpredError(`download of ${meta.url}: ${size} bytes, expected ${meta.size}`);
  const kind = /^[0-9a-f]{64}$/.test(meta.etag) ? "sha256" : /^[0-9a-f]{40}$/.test(meta.etag) ? "sha1" : undefined;
  if (!kind) return; // an opaque etag (some mirrors): nothing to check against
  const h = createHash(kind);
  if (kind === "sha1") h.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const got = h.digest("hex");
  if (got !== meta.etag) throw new LenpredError(`download of ${meta.url} is corrupt: ${kind} ${got}, expected ${meta.etag}`);
}

/**
 * One downloader per blob across processes: `blobs/{etag}.lock`, created exclusively. A process that finds it
 * waits for the blob (or for the lock to go); a lock untouched for 10 minutes is from a dead process and is taken over.
 */
async function withBlobLock(blob: string, fn: () => Promise<void>): Promise<void> {
  const lock = `${blob}.lock`;
  await mkdir(dirname(blob), { recursive: true });
  for (;;) {
    try {
      await (await open(lock, "wx")).close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (existsSync(blob)) return;
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 10 * 60_000) await rm(lock, { force: true });
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (!existsSync(blob)) await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** Download into blobs/{etag}: resume a `.incomplete` with Range, verify, fsync, rename. */
async function downloadBlob(http: HubHttp, meta: FileMeta, blob: string): Promise<void> {
  await withBlobLock(blob, () => downloadUnlocked(http, meta, blob));
}

async function downloadUnlocked(http: HubHttp, meta: FileMeta, blob: string): Promise<void> {
  const partial = `${blob}.incomplete`;
  let have: number;
  try { have = (await stat(partial)).size; } catch { have = 0; }
  if (meta.size !== undefined && have > meta.size) { await rm(partial, { force: true }); have = 0; }
  // An idle timeout, not a total one: a large file may take long, a stalled connection must not hang forever.
  const abort = new AbortController();
  let idle = setTimeout(() => abort.abort(new Error(`no data for ${http.timeoutMs} ms`)), http.timeoutMs);
  const touch = () => { clearTimeout(idle); idle = setTimeout(() => abort.abort(new Error(`no data for ${http.timeoutMs} ms`)), http.timeoutMs); };
  try {
    await fetchInto(http, meta, partial, have, abort.signal, touch);
  } finally {
    clearTimeout(idle);
  }
  try {
    await verifyBlob(partial, meta);
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
  await rename(partial, blob);
}

async function fetchInto(http: HubHttp, meta: FileMeta, partial: string, have: number, signal: AbortSignal, touch: () => void): Promise<void> {
  const res = await http.fetch(meta.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal });
  if (res.status === 416 && meta.size === have) {
    // Already complete: fall through to verification.
  } else if (!res.ok) {
    throw new LenpredError(`download of ${meta.url} failed: HTTP ${res.status}`);
  }
  const append = res.status === 206;
  if (res.status !== 416) {
    const fh = await open(partial, append ? "a" : "w");
    try {
      if (res.body) for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) { touch(); await fh.write(chunk); }
      await fh.sync();
    } catch (e) {
      // Keep what arrived: the next attempt resumes from it.
      throw new LenpredError(`download of ${meta.url} was interrupted (${(e as Error).message}); run again to resume`);
    } finally {
      await fh.close();
    }
  }
}

/** snapshots/{commit}/{file} → ../../blobs/{etag} (a relative symlink, made atomically). */
async function linkSnapshot(repoDir: string, commit: string, file: string, etag: string): Promise<string> {
  const pointer = join(repoDir, "snapshots", commit, file);
  await mkdir(dirname(pointer), { recursive: true });
  const tmp = tempName(pointer);
  await symlink(relative(dirname(pointer), join(repoDir, "blobs", etag)), tmp);
  try {
    await rename(tmp, pointer);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  return pointer;
}

export interface SnapshotFile {
  name: string;
  /** A missing optional file is skipped; a missing required one is an error. */
  optional?: boolean;
}

/**
 * Fetch files of a repository at a revision into the cache (or find them there) and return the snapshot
 * directory, `snapshots/{commit}`, which holds them under their repository names. `files` undefined = all files
 * the repository lists (a lenpred model repository), minus formats lenpred cannot read.
 */
export async function hubSnapshot(spec: string | RepoRef, files: SnapshotFile[] | undefined, opts: HubOptions = {}): Promise<{ dir: string; commit: string }> {
  const ref = typeof spec === "string" ? parseRepoSpec(spec) : spec;
  for (const f of files ?? []) checkFileName(f.name);
  const repoDir = repoCacheDir(ref.repo, opts);
  const fromCache = async (why: string) => {
    const commit = await cachedCommit(ref, opts);
    const dir = commit && join(repoDir, "snapshots", commit);
    const missing = !dir || !existsSync(dir) ? ["(nothing cached)"] : (files ?? []).filter((f) => !f.optional && !existsSync(join(dir, f.name))).map((f) => f.name);
    if (missing.length || !commit || !dir) {
      throw new LenpredError(`${ref.repo}@${ref.revision}: ${why}, and the cache (${repoDir}) lacks ${missing.join(", ")}`);
    }
    return { dir, commit };
  };
  if (hubOffline(opts)) return fromCache("HF_HUB_OFFLINE is set");
  const http = new HubHttp(opts);
  try {
    const info = await hubRepoInfo(ref, opts);
    const wanted: SnapshotFile[] = files ?? info.files.filter((f) => !UNREADABLE.test(f)).map((name) => ({ name }));
    for (const f of wanted) checkFileName(f.name);
    const at: RepoRef = { repo: ref.repo, revision: info.commit }; // every file from the same commit
    for (const f of wanted) {
      const pointer = join(repoDir, "snapshots", info.commit, f.name);
      if (existsSync(pointer)) continue;
      if (files && !info.files.includes(f.name)) {
        if (f.optional) continue;
        throw new LenpredError(`${ref.repo}@${ref.revision} has no ${f.name}`);
      }
      const meta = await headFile(http, at, f.name);
      if (meta === "missing") {
        if (f.optional) continue;
        throw new LenpredError(`${ref.repo}@${ref.revision} has no ${f.name}`);
      }
      const blob = join(repoDir, "blobs", meta.etag);
      if (!existsSync(blob)) await downloadBlob(http, meta, blob);
      await linkSnapshot(repoDir, info.commit, f.name, meta.etag);
    }
    if (ref.revision !== info.commit) await writeFileAtomic(join(repoDir, "refs", ref.revision), info.commit);
    return { dir: join(repoDir, "snapshots", info.commit), commit: info.commit };
  } catch (e) {
    // Like huggingface_hub: without a connection, what the cache holds for the revision is still usable.
    if (e instanceof HubUnreachable) return fromCache(e.message);
    throw e;
  }
}

/** Weight formats lenpred does not read (it uses safetensors and ONNX); a full-repository snapshot skips them. */
const UNREADABLE = /(^|\/)(pytorch_model.*\.bin|tf_model\.h5|flax_model\.msgpack|rust_model\.ot|model\.ckpt.*|.*\.gguf|coreml\/.*|openvino\/.*)$/;
