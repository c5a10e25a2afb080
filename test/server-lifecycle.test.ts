import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { drainOnSignals } from "../src/commands/server-lifecycle.js";

/** drainOnSignals registers process signal handlers: remove the ones a test added. */
const before = { SIGTERM: process.listeners("SIGTERM"), SIGINT: process.listeners("SIGINT") };
afterEach(() => {
  for (const sig of ["SIGTERM", "SIGINT"] as const) for (const l of process.listeners(sig)) if (!before[sig].includes(l)) process.off(sig, l);
});

// The signal path (SIGTERM → drain → exit 0) is covered end to end by test/serve-cli.test.ts.
describe("drainOnSignals", () => {
  it("drains and resolves exit code 1 when the server reports a fatal error (for a supervisor to restart it)", async () => {
    const app = Fastify({ logger: false, forceCloseConnections: "idle" }); // as lenpred serve: keep-alive connections do not hold up close
    let release!: () => void;
    const slow = new Promise<void>((r) => { release = r; });
    app.get("/slow", async (_req, reply) => { await slow; reply.header("connection", "close"); return { ok: true }; }); // as lenpred serve does while draining
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    let fail!: (e: Error) => void;
    const fatal = new Promise<Error>((r) => { fail = r; });
    const code = drainOnSignals(app, 30, undefined, fatal);
    const inFlight = fetch(url + "/slow");
    await new Promise((r) => setTimeout(r, 50));
    let settled = false;
    void code.then(() => { settled = true; });
    fail(new Error("predictor worker exited (code 1)"));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false); // drains first: the in-flight request is answered
    release();
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(await answered.json()).toEqual({ ok: true });
    expect(await code).toBe(1);
    expect(app.server.listening).toBe(false);
  });
});
