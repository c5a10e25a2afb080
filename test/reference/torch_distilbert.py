#!/usr/bin/python3
"""Load a lenpred model directory the way HF transformers would, in plain PyTorch, and print logits.

An independent reader of lenpred's files: parses model.safetensors by its spec (json header + raw bytes,
F32/F16/BF16 via torch dtypes), reads config.json by HF's field names, and runs the forward of HF
`DistilBertForSequenceClassification` (modeling_distilbert.py, eval mode) with torch.nn.functional using the
weights under their HF names ([out, in] Linear layout, F.linear). Input on stdin: {"ids": [[...]], "mask": [[...]]}.
Output: one JSON line {"logits": [[...]], "missing": [...], "unexpected": [...]}.
Needs only python3-torch (Debian); used by test/model-torch.test.ts when available.
"""
import json, math, struct, sys
import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    assert meta.get("format") == "pt", "HF requires __metadata__.format == 'pt'"
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        buf = bytearray(data[base + b : base + end])
        t = torch.frombuffer(buf, dtype=DTYPES[e["dtype"]]) if len(buf) else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).to(torch.float32)
    return out


def round_bits():
    """--round: float32 values on stdin (JSON list) -> torch's float16 and bfloat16 bit patterns."""
    x = torch.tensor(json.load(sys.stdin), dtype=torch.float32)
    f16 = x.half().view(torch.int16).to(torch.int32) & 0xFFFF
    bf16 = x.bfloat16().view(torch.int16).to(torch.int32) & 0xFFFF
    print(json.dumps({"f16": f16.tolist(), "bf16": bf16.tolist()}))


def main():
    if sys.argv[1] == "--round":
        return round_bits()
    d = sys.argv[1]
    cfg = json.load(open(f"{d}/config.json"))
    assert cfg["model_type"] == "distilbert" and cfg["architectures"] == ["DistilBertForSequenceClassification"]
    sd = load_safetensors(f"{d}/model.safetensors")
    num_labels = len(cfg["id2label"])
    dim, n_heads, n_layers = cfg["dim"], cfg["n_heads"], cfg["n_layers"]
    expected = ["distilbert.embeddings.word_embeddings.weight", "distilbert.embeddings.position_embeddings.weight",
                "distilbert.embeddings.LayerNorm.weight", "distilbert.embeddings.LayerNorm.bias"]
    for i in range(n_layers):
        p = f"distilbert.transformer.layer.{i}."
        for m in ["attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"]:
            expected += [p + m + ".weight", p + m + ".bias"]
    expected += ["pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"]
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    W = lambda k: sd[k]
    req = json.load(sys.stdin)
    ids = torch.tensor(req["ids"], dtype=torch.long)
    mask = torch.tensor(req["mask"], dtype=torch.long)
    act = F.gelu if cfg["activation"] == "gelu" else F.relu
    with torch.no_grad():
        bs, n = ids.shape
        pos = torch.arange(n).unsqueeze(0)
        x = W("distilbert.embeddings.word_embeddings.weight")[ids] + W("distilbert.embeddings.position_embeddings.weight")[pos]
        x = F.layer_norm(x, (dim,), W("distilbert.embeddings.LayerNorm.weight"), W("distilbert.embeddings.LayerNorm.bias"), eps=1e-12)
        dh = dim // n_heads
        for i in range(n_layers):
            p = f"distilbert.transformer.layer.{i}."
            lin = lambda t, m: F.linear(t, W(p + m + ".weight"), W(p + m + ".bias"))
            shape = lambda t: t.view(bs, -1, n_heads, dh).transpose(1, 2)
            q = shape(lin(x, "attention.q_lin")) / math.sqrt(dh)
            k = shape(lin(x, "attention.k_lin"))
            v = shape(lin(x, "attention.v_lin"))
            scores = q @ k.transpose(2, 3)
            m = (mask == 0).view(bs, 1, 1, n).expand_as(scores)
            scores = scores.masked_fill(m, torch.finfo(scores.dtype).min)
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(bs, -1, dim)
            sa = F.layer_norm(lin(ctx, "attention.out_lin") + x, (dim,), W(p + "sa_layer_norm.weight"), W(p + "sa_layer_norm.bias"), eps=1e-12)
            ffn = lin(act(lin(sa, "ffn.lin1")), "ffn.lin2")
            x = F.layer_norm(ffn + sa, (dim,), W(p + "output_layer_norm.weight"), W(p + "output_layer_norm.bias"), eps=1e-12)
        pooled = F.relu(F.linear(x[:, 0], W("pre_classifier.weight"), W("pre_classifier.bias")))
        logits = F.linear(pooled, W("classifier.weight"), W("classifier.bias"))
    assert logits.shape[1] == num_labels
    print(json.dumps({"logits": logits.tolist(), "missing": missing, "unexpected": unexpected}))


if __name__ == "__main__":
    main()
