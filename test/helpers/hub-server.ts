/**
 * A stand-in Hugging Face hub on 127.0.0.1 for the tests: the endpoints and headers huggingface_hub's download
 * path uses. `GET /api/models/{repo}/revision/{rev}` → `{id, sha, siblings}`; `HEAD|GET /{repo}/resolve/{rev}/{file}`
 * → `X-Repo-Commit`, and `ETag` = git blob sha1 for regular files, or for LFS files (`*.safetensors`, `*.onnx`,
 * `*.f32`) a 302 to `/cdn/{sha256}` with `X-Linked-Etag` = sha256 and `X-Linked-Size`. The CDN honours
 * `Range: bytes=N-` (206). Errors carry `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound); a repo with
 * a token answers 401 without `Authorization: Bearer <token>`. Faults: `truncateOnce(sha256)` sends half of the
 * next CDN answer and drops the connection; `corruptOnce(sha256)` flips a byte of the next one.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type RepoFiles = Record<string, Uint8Array | string>;
export interface StandInRepo {
  /** Files per revision name (branch or tag). */
  revisions: Record<string, RepoFiles>;
  token?: string;
}

export interface StandInHub {
  endpoint: string;
  requests: { method: string; url: string; headers: IncomingHttpHeaders }[];
  commitOf(repo: string, revision: string): string;
  truncateOnce(sha256: string): void;
  corruptOnce(sha256: string): void;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|onnx|f32|bin)$/;
export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
export const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const bytes = (v: Uint8Array | string) => (typeof v === "string" ? Buffer.from(v) : Buffer.from(v));

export async function startStandInHub(repos: Record<string, StandInRepo>): Promise<StandInHub> {
  const requests: StandInHub["requests"] = [];
  const truncate = new Set<string>();
  const corrupt = new Set<string>();
  const commitOf = (repo: string, rev: string) => createHash("sha1").update(`${repo}@${rev}:${JSON.stringify(Object.keys(repos[repo]!.revisions[rev]!))}`).digest("hex");
  const blobs = new Map<string, Buffer>();
  for (const r of Object.values(repos)) for (const files of Object.values(r.revisions)) for (const v of Object.values(files)) blobs.set(sha256(bytes(v)), bytes(v));

  /** Revision name or commit → [name, files]. */
  const findRev = (repo: string, rev: string): [string, RepoFiles] | undefined => {
    const r = repos[repo]!;
    if (r.revisions[rev]) return [rev, r.revisions[rev]!];
    const hit = Object.keys(r.revisions).find((name) => commitOf(repo, name) === rev);
    return hit ? [hit, r.revisions[hit]!] : undefined;
  };

  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    const url = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(url.pathname);
    const fail = (status: number, code?: string) => res.writeHead(status, code ? { "x-error-code": code } : {}).end(code ?? "error");

    if (path.startsWith("/cdn/")) {
      const body = blobs.get(path.slice(5));
      if (!body) return fail(404);
      let out = Buffer.from(body);
      if (corrupt.delete(path.slice(5))) { out = Buffer.from(out); out[0] = out[0]! ^ 0xff; }
      const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""));
      const start = m ? Number(m[1]) : 0;
      if (start >= out.length && m) return res.writeHead(416, { "content-range": `bytes */${out.length}` }).end();
      const part = out.subarray(start);
      res.writeHead(m ? 206 : 200, { "content-length": part.length, ...(m ? { "content-range": `bytes ${start}-${out.length - 1}/${out.length}` } : {}) });
      if (req.method === "HEAD") return res.end();
      if (truncate.delete(path.slice(5))) {
        // Half the body, then the connection drops (after the client has had time to take the half).
        res.write(part.subarray(0, Math.floor(part.length / 2)), () => setTimeout(() => res.destroy(), 100));
        return;
      }
      return res.end(part);
    }

    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(path);
    const resolve = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoName = api?.[1] ?? resolve?.[1];
    if (!repoName) return fail(404);
    const repo = repos[repoName];
    if (!repo) return fail(404, "RepoNotFound");
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return fail(401);
    const rev = findRev(repoName, (api?.[2] ?? resolve?.[2])!);
    if (!rev) return fail(404, "RevisionNotFound");
    const commit = commitOf(repoName, rev[0]);
    if (api) {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ id: repoName, sha: commit, siblings: Object.keys(rev[1]).map((rfilename) => ({ rfilename })) }));
    }
    const file = resolve![3]!;
    const v = rev[1][file];
    if (v === undefined) return res.writeHead(404, { "x-error-code": "EntryNotFound", "x-repo-commit": commit }).end();
    const body = bytes(v);
    if (LFS.test(file)) {
      const s = sha256(body);
      const port = (server.address() as AddressInfo).port;
      return res.writeHead(302, { location: `http://127.0.0.1:${port}/cdn/${s}`, "x-repo-commit": commit, "x-linked-etag": `"${s}"`, "x-linked-size": String(body.length) }).end();
    }
    res.writeHead(200, { "x-repo-commit": commit, etag: `"${gitSha1(body)}"`, "content-length": body.length });
    return req.method === "HEAD" ? res.end() : res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    commitOf,
    truncateOnce: (s) => truncate.add(s),
    corruptOnce: (s) => corrupt.add(s),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
