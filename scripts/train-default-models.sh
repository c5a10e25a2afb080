#!/usr/bin/env bash
# Rebuilds the committed default models (models/alpaca-s3, models/vicuna-7b) from ../shared data: the exact
# commands behind docs/models.md and the model cards. ~5 min on a quiet 2-core machine.
#
#   scripts/train-default-models.sh                  # writes models/alpaca-s3 and models/vicuna-7b
#   OUT=/tmp/check scripts/train-default-models.sh   # somewhere else (e.g. to compare with the committed ones)
#
# The n-gram parts are bit-for-bit reproducible; the DistilBERT parts vary slightly between runs because
# onnxruntime's dropout masks do not follow --seed (see docs/train.md).
set -euo pipefail
cd "$(dirname "$0")/.."
L=${L:-"npx tsx src/cli.ts"}
SHARED=${SHARED:-../shared/data}
DATA=${DATA:-/tmp/lenpred-default-data}   # prepared data
RUNS=${RUNS:-/tmp/lenpred-default-runs}   # training outputs before assembly
OUT=${OUT:-models}
mkdir -p "$DATA" "$RUNS" "$OUT"

# --- data: 80/10/10 splits (seed 42); test = the held-out split every card reports --------------------------
$L prepare -i "$SHARED/alpaca/alpaca_data.json" -o "$DATA/alpaca-s3" --test-fraction 0.1 -q
$L prepare -i "$SHARED/alpaca/alpaca_data.json" --lengths "$SHARED/vicuna-7b-lengths/alpaca-train-10k-length.json" \
  --label max --tokenizer llama -o "$DATA/vicuna-max" --test-fraction 0.1 -q
# Alpaca reference lengths without the Vicuna val/test prompts, for pre-training the Vicuna models.
mkdir -p "$DATA/alpaca-pre"
cp "$DATA/alpaca-s3/scheme.json" "$DATA/alpaca-pre/"
node -e '
const fs = require("fs"), [src, vic, dst] = process.argv.slice(1);
const lines = (f) => fs.readFileSync(f, "utf8").split("\n").filter((l) => l.trim());
const held = new Set(["val", "test"].flatMap((s) => lines(`${vic}/${s}.jsonl`).map((l) => JSON.parse(l).id)));
for (const s of ["train", "val"]) fs.writeFileSync(`${dst}/${s}.jsonl`, lines(`${src}/${s}.jsonl`).filter((l) => !held.has(JSON.parse(l).id)).join("\n") + "\n");
' "$DATA/alpaca-s3" "$DATA/vicuna-max" "$DATA/alpaca-pre"

MINI=assets/configs/distilbert-mini.json   # 2 layers × dim 64, 2 heads, FFN 256

# --- alpaca-s3 ------------------------------------------------------------------------------------------------
$L train --data "$DATA/alpaca-s3" --out "$RUNS/alpaca-mini" --config $MINI --head regression \
  --epochs 3 --lr 1e-3 --warmup 0.05 --batch-size 32 --dtype F16 --overwrite --no-progress
$L baseline --kind ngram --data "$DATA/alpaca-s3" --hash-bits 15 --save "$RUNS/alpaca-ngram15"

# --- vicuna-7b: pre-train on Alpaca reference lengths, then fit the Vicuna max-over-temperatures labels -------
$L train --data "$DATA/alpaca-pre" --out "$RUNS/pre-mini" --config $MINI --head regression \
  --epochs 3 --lr 1e-3 --warmup 0.05 --batch-size 32 --dtype F16 --overwrite --no-progress
$L train --data "$DATA/vicuna-max" --out "$RUNS/vicuna-mini" --init "$RUNS/pre-mini" --head regression \
  --epochs 4 --lr 5e-4 --warmup 0.1 --batch-size 32 --monitor mae --patience 2 --dtype F16 --overwrite --no-progress
$L baseline --kind ngram --data "$DATA/alpaca-pre" --hash-bits 15 --save "$RUNS/pre-ngram15"
$L baseline --kind ngram --data "$DATA/vicuna-max" --init "$RUNS/pre-ngram15" --save "$RUNS/vicuna-ngram15"

# --- assemble: an "ensemble" directory holding both members (src/predictor/ensemble.ts) --------------------------
assemble() { # name distilbert-run ngram-run tokenizer label
  local dir="$OUT/$1"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  cp -r "$RUNS/$2" "$dir.tmp/distilbert" && cp -r "$RUNS/$3" "$dir.tmp/ngram"
  cat > "$dir.tmp/lenpred.json" <<EOF
{
  "kind": "ensemble",
  "buckets": { "kind": "uniform", "edges": [128, 256, 384, 512, 640, 768, 896, 1024] },
  "tokenizer": "$4",
  "label": "$5",
  "members": [{ "dir": "distilbert", "weight": 1 }, { "dir": "ngram", "weight": 1 }]
}
EOF
  # keep the hand-written card and held-out results of an existing directory
  for f in README.md heldout.json; do [ -f "$dir/$f" ] && cp "$dir/$f" "$dir.tmp/"; done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
assemble alpaca-s3 alpaca-mini alpaca-ngram15 bert-base-uncased alpaca:output
assemble vicuna-7b vicuna-mini vicuna-ngram15 llama vicuna:max

# --- held-out results ------------------------------------------------------------------------------------------
for m in alpaca-s3:alpaca-s3 vicuna-7b:vicuna-max; do
  name=${m%%:*}; data=${m#*:}
  $L baseline --kind median --data "$DATA/$data" --split test --out "$RUNS/$name-median.test.jsonl"
  $L predict --model "$OUT/$name" --file "$DATA/$data/test.jsonl" --out "$RUNS/$name.test.jsonl"
  $L eval --data "$DATA/$data" --split test --preds "$RUNS/$name-median.test.jsonl" "$RUNS/$name.test.jsonl" --markdown
done
du -sh "$OUT/alpaca-s3" "$OUT/vicuna-7b"
