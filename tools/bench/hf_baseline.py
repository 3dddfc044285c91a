#!/usr/bin/env python3
"""Hugging Face transformers baseline for `ttc bench` (issue 9): the same protocol on the same card.

Llama-3.2-1B or -3B shapes (engine-perf.md section 1.1) with random bf16 weights (no download), one random
prompt of --prompt-len tokens repeated --batch times, `generate` with sampling (temperature 1) for exactly
--gen-len new tokens (min_new_tokens = max_new_tokens, so no early stop), dynamic cache, SDPA attention.
Reports the whole generate call (prefill included, what the issue quotes) and, from a separate prefill-only
forward, an estimate of the decode part. Offline tool: runs where PyTorch and transformers are installed
(the GPU machine), never in the build or the tests.

    python3 tools/bench/hf_baseline.py --model llama-3.2-1b --batch 256 --json out.json
"""
import argparse
import json
import time

import torch

CONFIGS = {
    # engine-perf.md 1.1: the public config.json values of the Llama 3.2 models.
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, tie_word_embeddings=True),
    "llama-3.2-3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                         num_key_value_heads=8, head_dim=128, tie_word_embeddings=True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.2-1b", choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--gen-len", type=int, default=512)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=131072,
                      rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                      bos_token_id=128000, eos_token_id=128001, pad_token_id=128001,
                      attn_implementation="sdpa", **CONFIGS[args.model])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    prompt = torch.randint(0, 128000, (1, args.prompt_len), device="cuda")
    ids = prompt.expand(args.batch, -1).contiguous()
    mask = torch.ones_like(ids)
    gen = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=args.gen_len,
               min_new_tokens=args.gen_len, use_cache=True, pad_token_id=128001)

    with torch.no_grad():
        model.generate(ids[:, :16], attention_mask=mask[:, :16], **dict(gen, max_new_tokens=4, min_new_tokens=4))
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(ids, attention_mask=mask, logits_to_keep=1)
        torch.cuda.synchronize()
        prefill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(ids, attention_mask=mask, **gen)
        torch.cuda.synchronize()
        total_s = time.perf_counter() - t0
    new = out.shape[1] - args.prompt_len
    res = {"model": args.model, "batch": args.batch, "prompt_len": args.prompt_len, "gen_len": new,
           "generate_s": total_s, "prefill_forward_s": prefill_s, "decode_estimate_s": total_s - prefill_s,
           "tokens_per_s": args.batch * new / total_s, "transformers": transformers.__version__,
           "torch": torch.__version__, "device": torch.cuda.get_device_name()}
    print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
