/** lenpred's own version (package.json), for ONNX producer_version, `lenpred --version` and build info. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./paths.js";

export const LENPRED_VERSION: string = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
