/** Where the shared datasets live: $LENPRED_SHARED, else `../shared` beside the checkout. */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (works from src/ under tsx and from dist/ after build). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function sharedDir(): string {
  return process.env.LENPRED_SHARED ?? join(repoRoot, "..", "shared");
}

/** Path of a file under ../shared/data, or undefined when it is absent (tests and benches skip then). */
export function sharedDataFile(rel: string): string | undefined {
  const p = join(sharedDir(), "data", rel);
  return existsSync(p) ? p : undefined;
}
