/** Where `lenpred train --init` reads pretrained weights from: a local HF directory, or a hub repository. */
import { CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE } from "../model-dir/index.js";
import { existsSync } from "node:fs";
import { hubSnapshot, type HubOptions, type SnapshotFile } from "../hub/client.js";
import { LenpredError } from "../util/errors.js";

/** What from_pretrained fetches for DistilBERT + its fast tokenizer (safetensors only: lenpred reads no pickles). */
export const INIT_FILES: SnapshotFile[] = [
  { name: CONFIG_FILE },
  { name: WEIGHTS_FILE },
  { name: TOKENIZER_FILE, optional: true },
  { name: "tokenizer_config.json", optional: true },
  { name: "special_tokens_map.json", optional: true },
  { name: "vocab.txt", optional: true },
];

/** An existing path is used as is; anything else is a hub repository id, fetched into the hub cache. */
export async function resolveInitDir(init: string, hub: HubOptions = {}): Promise<string> {
  if (!init.startsWith("hf:") && existsSync(init)) return init;
  try {
    return (await hubSnapshot(init, INIT_FILES, hub)).dir;
  } catch (e) {
    if (e instanceof LenpredError && /invalid Hugging Face repository/.test(e.message)) {
      throw new LenpredError(`--init '${init}' is neither a directory nor a Hugging Face repository id (org/name[@revision])`, { field: "--init" });
    }
    throw e;
  }
}
