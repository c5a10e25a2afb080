/**
 * The declared `engines.node` is true: every package the lockfile installs accepts every Node version lenpred
 * declares (so `npm ci` prints no EBADENGINE on a supported Node). light-my-request ≥ 6.8 (fastify's inject) wants
 * cookie 2, which requires Node 22; lenpred depends on light-my-request ~6.6 (cookie 1) directly so that npm dedupes
 * fastify's `^6.0.0` to it, in this repo and in a project that installs lenpred (where `overrides` would not apply).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import semver from "semver";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/util/paths.js";

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { engines: { node: string } };
type Locked = { engines?: { node?: string }; version?: string; optional?: boolean; os?: string[]; cpu?: string[] };
const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, Locked> };

/** npm skips (and so never engine-checks) optional packages built for another platform, e.g. sharp's win32 binaries. */
const installsHere = (v: Locked) => !v.optional || ((v.os ?? [process.platform]).includes(process.platform) && (v.cpu ?? [process.arch]).includes(process.arch));

describe("engines", () => {
  it("every locked package supports every declared Node version (no EBADENGINE on install)", () => {
    const ours = pkg.engines.node;
    expect(semver.validRange(ours)).toBeTruthy();
    const bad = Object.entries(lock.packages)
      .filter(([k, v]) => k !== "" && installsHere(v) && v.engines?.node && !semver.subset(ours, v.engines.node))
      .map(([k, v]) => `${k}@${v.version} requires node ${v.engines!.node}`);
    expect(bad).toEqual([]);
  });

  it("this Node is one lenpred declares", () => {
    expect(semver.satisfies(process.version, pkg.engines.node), `${process.version} vs ${pkg.engines.node}`).toBe(true);
  });

  it("fastify uses the pinned light-my-request (cookie 1) and its inject sends cookies", async () => {
    expect(lock.packages["node_modules/fastify/node_modules/light-my-request"]).toBeUndefined();
    const cookie = lock.packages["node_modules/light-my-request/node_modules/cookie"] ?? lock.packages["node_modules/cookie"];
    expect(semver.major(cookie!.version!)).toBe(1);
    const app = Fastify();
    app.get("/", async (req) => ({ cookie: req.headers.cookie ?? null }));
    const res = await app.inject({ method: "GET", url: "/", cookies: { a: "1", b: "x y" } });
    expect(res.json()).toEqual({ cookie: "a=1; b=x%20y" });
    await app.close();
  });
});
