#!/usr/bin/env python3
"""Trains the default experiment's models on the CPU: tokenizer, Llama teacher, MambaInLlama and Llamba students
(distilled from the teacher), and the process reward model. See README.md beside this file.

  python3 tools/train/train.py data      --ttc build/ttc     # synthetic train / held-out JSONL via `ttc dataset`
  python3 tools/train/train.py tokenizer
  python3 tools/train/train.py teacher
  python3 tools/train/train.py mil
  python3 tools/train/train.py llamba
  python3 tools/train/train.py prm
  python3 tools/train/train.py finish                      # golden.safetensors, accuracies, model cards data

Offline tool only (PyPI: torch, tokenizers, safetensors); never used by the build or the tests.
"""

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ttcmodels as tm  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.environ.get("TTC_MODELS_DIR", os.path.join(REPO, "experiments", "models"))
TEACHER, MIL, LLAMBA, PRM = (os.path.join(MODELS, n) for n in
                             ("teacher-llama", "student-mambainllama", "student-llamba", "prm-llama"))
TRAIN_SEED, HELDOUT_SEED = 1000, 2024
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
            "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|reserved_special_token_3|>",
            "<|reserved_special_token_4|>", "<|reserved_special_token_5|>", "<|reserved_special_token_6|>",
            "<|reserved_special_token_7|>"]
VOCAB = 512
D, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FF = 96, 4, 4, 2, 24, 256
MIL_ATTN_LAYERS = [2]
MAX_NEW = 96
PLAIN_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def work_dir(args):
    os.makedirs(args.work, exist_ok=True)
    return args.work


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ------------------------------------------------------------------------------------------------------------
# Tokenizer


class Tok:
    def __init__(self, folder=TEACHER):
        from tokenizers import Tokenizer
        self.t = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.id = {s: self.t.token_to_id(s) for s in SPECIALS}
        self.bos, self.eot = self.id["<|begin_of_text|>"], self.id["<|eot_id|>"]
        self.stop = {self.id["<|end_of_text|>"], self.id["<|eom_id|>"], self.eot}

    def enc(self, text):
        return self.t.encode(text, add_special_tokens=False).ids

    def dec(self, ids):
        return self.t.decode(ids, skip_special_tokens=False)


def stage_data(args):
    w = work_dir(args)
    for name, seed, count in (("train", TRAIN_SEED, args.train_count), ("heldout", HELDOUT_SEED, 400)):
        out = os.path.join(w, name + ".jsonl")
        subprocess.run([args.ttc, "dataset", "synthetic", "--count", str(count), "--seed", str(seed),
                        "--min-level", "1", "--max-level", "3", "--out", out], check=True)
        log("wrote", out)


def load_splits(args):
    w = work_dir(args)
    train = read_jsonl(os.path.join(w, "train.jsonl"))
    held = read_jsonl(os.path.join(w, "heldout.jsonl"))
    held_q = {p["question"] for p in held}
    train = [p for p in train if p["question"] not in held_q]  # no held-out problem is ever trained on
    return train, held


def stage_tokenizer(args):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    train, _ = load_splits(args)
    rng = random.Random(0)
    corpus = []
    for p in train[:20000]:
        corpus.append(tm.render_prompt(p["question"], rng.choice(["sal", "plain"])) + p["solution"])
        corpus.append(tm.render_prm(p["question"], p["solution"].split("\n\n")))
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tm.LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - len(SPECIALS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    # Train without the specials in the text so no merge crosses them.
    plain = [piece for c in corpus for piece in re.split(r"<\|[a-z_0-9]+\|>", c) if piece]
    tok.train_from_iterator(plain, trainer)
    # Re-add the specials after the BPE vocabulary (ids VOCAB-16 .. VOCAB-1), as Llama 3 puts them after its ranks.
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    os.makedirs(TEACHER, exist_ok=True)
    tok.save(os.path.join(TEACHER, "tokenizer.json"))
    # Normalise the JSON the way HF writes Llama 3's (pretty, ordered) for readability.
    j = json.load(open(os.path.join(TEACHER, "tokenizer.json")))
    # Merges as "a b" strings, the form Llama 3's tokenizer.json uses (byte-level symbols never hold a space).
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    with open(os.path.join(TEACHER, "tokenizer.json"), "w") as f:
        json.dump(j, f, ensure_ascii=False, indent=2)
    t = Tok(TEACHER)
    lens = [len(t.enc(tm.render_prompt(p["question"]))) for p in train[:200]]
    sl = [len(t.enc(p["solution"])) + 1 for p in train[:200]]
    log("tokenizer: vocab", VOCAB, "prompt tokens mean", sum(lens) / len(lens), "solution tokens mean",
        sum(sl) / len(sl), "max", max(sl))
    for s in ["+", "-", "\n\n", " 12 + 7 = 19."]:
        log(repr(s), t.enc(s))


def tokenizer_config():
    dec = {}
    for s in SPECIALS:
        dec[str(VOCAB - len(SPECIALS) + SPECIALS.index(s))] = {
            "content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
    return {"added_tokens_decoder": dec, "bos_token": "<|begin_of_text|>", "chat_template": PLAIN_CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": True, "eos_token": "<|eot_id|>",
            "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 131072,
            "pad_token": "<|finetune_right_pad_id|>", "tokenizer_class": "PreTrainedTokenizerFast"}


def write_side_files(folder, tok):
    os.makedirs(folder, exist_ok=True)
    if os.path.abspath(folder) != os.path.abspath(TEACHER):
        shutil.copy(os.path.join(TEACHER, "tokenizer.json"), os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)
        f.write("\n")
    eos = [tok.id["<|end_of_text|>"], tok.id["<|eom_id|>"], tok.eot]
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": tok.bos, "do_sample": True, "eos_token_id": eos, "temperature": 0.6,
                   "top_p": 0.9}, f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------------------------------------------------
# Training data: chat-rendered problems, loss on the assistant turn only


def prefixes(tok):
    """Every rendered prompt starts with a constant prefix (chat header, instruction up to "Problem:"); training
    runs it once per batch and shares its KV cache / recurrent state among the batch rows, which is exact (the
    gradient flows through the shared prefix) and saves about a third of the compute."""
    out = {}
    for style in ("sal", "plain"):
        text = tm.render_prompt("QQQ", style)
        out[style] = tok.enc(text[:text.index(" QQQ")])
    return out


def encode_examples(tok, problems, rng):
    pre = prefixes(tok)
    out = []
    for i, p in enumerate(problems):
        style = "sal" if rng.random() < 0.7 else "plain"
        prompt = tok.enc(tm.render_prompt(p["question"], style))
        if i < 50:  # the split must not change the tokens
            assert prompt[:len(pre[style])] == pre[style], "prompt prefix tokenizes differently"
        target = tok.enc(p["solution"]) + [tok.eot]
        out.append((style, prompt[len(pre[style]):], target))
    return out


def batches(examples, batch, rng, tok):
    """Yields (prefix ids [P], suffix ids [B, S], mask [B, S]); mask marks suffix positions whose next token is a
    target (the assistant turn). One style per batch so the prefix is shared."""
    pre = prefixes(tok)
    by_style = {s: [e for e in examples if e[0] == s] for s in pre}
    idx = {s: list(range(len(v))) for s, v in by_style.items()}
    pos = {s: len(v) for s, v in idx.items()}
    total = len(examples)
    while True:
        style = "sal" if rng.random() < len(by_style["sal"]) / total else "plain"
        if pos[style] + batch > len(idx[style]):
            rng.shuffle(idx[style])
            pos[style] = 0
        chunk = [by_style[style][j] for j in idx[style][pos[style]:pos[style] + batch]]
        pos[style] += batch
        L = max(len(a) + len(b) for _, a, b in chunk)
        ids = torch.zeros(batch, L, dtype=torch.long)
        mask = torch.zeros(batch, L, dtype=torch.bool)
        for r, (_, a, b) in enumerate(chunk):
            seq = a + b
            ids[r, :len(seq)] = torch.tensor(seq)
            mask[r, len(a) - 1:len(seq) - 1] = True
        yield torch.tensor(pre[style]), ids, mask


def forward_shared(model, prefix, ids):
    """Logits of the suffix rows [B, S, V] after a shared prefix (run once, state expanded to B rows)."""
    caches = model.new_caches()
    model(prefix[None], caches, 0)
    caches = [{k: v.expand(ids.shape[0], *v.shape[1:]) for k, v in c.items()} for c in caches]
    return model(ids, caches, len(prefix))


def lr_at(step, total, peak, warm=100):
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm)))) * 0.95 + peak * 0.05


def make_teacher(tok):
    eos = [tok.id["<|end_of_text|>"], tok.id["<|eom_id|>"], tok.eot]
    cfg = tm.llama_config(VOCAB, D, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FF, tok.bos, eos,
                          "ttc/teacher-llama (trained from scratch on the synthetic task; not on the hub)")
    return tm.Decoder("llama", cfg)


def stage_teacher(args):
    torch.manual_seed(1)
    rng = random.Random(1)
    tok = Tok()
    train, held = load_splits(args)
    ex = encode_examples(tok, train[:args.steps * args.batch + 2000], rng)
    model = make_teacher(tok)
    prev = {}
    if args.resume:
        # Continue from the saved teacher with a fresh schedule (a run stopped early, or more steps wanted).
        model = tm.load_model(TEACHER)
        prev = json.load(open(os.path.join(MODELS, "training_log.json"))).get("teacher", {})
        log("resuming from", prev)
    log("teacher params", sum(p.numel() for p in model.parameters()))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.05)
    it = batches(ex, args.batch, rng, tok)
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        prefix, ids, mask = next(it)
        logits = forward_shared(model, prefix, ids)
        loss = F.cross_entropy(logits[:, :-1][mask[:, :-1]], ids[:, 1:][mask[:, :-1]])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            log(f"teacher step {step} loss {loss.item():.4f} elapsed {time.time() - t0:.0f}s")
        if step and step % 100 == 0:
            tm.save_model(model, TEACHER)  # so a run can be stopped early and still leave a model
            write_side_files(TEACHER, tok)
            record(args, "teacher", {"steps_done": step, "of": args.steps, "batch": args.batch, "lr": args.lr,
                                     "seconds": time.time() - t0, "loss": loss.item(), "resumed_from": prev})
        if args.eval_every and step and step % args.eval_every == 0:
            log("greedy acc", evaluate(model, tok, held[:100]))
    tm.save_model(model, TEACHER)
    write_side_files(TEACHER, tok)
    entry = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "seconds": time.time() - t0,
             "final_loss": loss.item(), "train_problems": len(train)}
    if prev:
        entry["resumed_from"] = prev
        entry["seconds_total"] = entry["seconds"] + prev.get("seconds_total", prev.get("seconds", 0))
        entry["steps_total"] = args.steps + prev.get("steps_total", prev.get("steps", prev.get("steps_done", 0)))
    record(args, "teacher", entry)
    log("teacher greedy acc on the 100 demo problems", evaluate(model, tok, held[:100]))


# ------------------------------------------------------------------------------------------------------------
# Evaluation (GSM8K "The final answer is N" extraction, evaluation.md 3.2)

ANSWER_RE = re.compile(r"final answer is\s*[:$]*\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)", re.I)


def extract(text):
    m = ANSWER_RE.findall(text)
    if not m:
        return None
    return m[-1].replace(",", "").rstrip(".")


@torch.no_grad()
def evaluate(model, tok, problems, style="sal", per_problem=False):
    model.eval()
    prompts = [tok.enc(tm.render_prompt(p["question"], style)) for p in problems]
    outs = tm.generate_many(model, prompts, MAX_NEW, 0.0, tok.stop)
    hits = [extract(tok.dec(o)) == p["answer"] for o, p in zip(outs, problems)]
    model.train()
    return hits if per_problem else sum(hits) / len(hits)


def record(args, key, value, merge=False):
    """Read-modify-write of training_log.json under a lock (stages run as parallel processes)."""
    import fcntl
    path = os.path.join(MODELS, "training_log.json")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.load(open(path)) if os.path.exists(path) else {}
        if merge and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(path + ".tmp", path)


# ------------------------------------------------------------------------------------------------------------
# Distillation


def kl_loss(student_logits, teacher_logits, mask, T=1.0):
    s = F.log_softmax(student_logits[mask] / T, -1)
    t = F.log_softmax(teacher_logits[mask] / T, -1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def distill_loop(args, name, student, teacher, tok, train, held, align_steps=0, align_params=None, save_to=None):
    rng = random.Random(2)
    ex = encode_examples(tok, train[:(args.steps + align_steps) * args.batch + 2000], rng)
    it = batches(ex, args.batch, rng, tok)
    teacher.eval()
    t0 = time.time()
    if align_steps:
        # Stage 1 (hidden-state alignment, as Llamba/MOHAWK): each student mixer, fed the teacher's own block
        # input, is trained to reproduce the teacher's attention output of that layer.
        opt = torch.optim.AdamW(align_params, lr=args.lr, weight_decay=0.0)
        for step in range(align_steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, align_steps, args.lr, warm=50)
            prefix, suffix, mask = next(it)
            ids = torch.cat([prefix[None].expand(suffix.shape[0], -1), suffix], 1)
            with torch.no_grad():
                _, hid, mix = teacher(ids, return_hidden=True)
            loss = 0.0
            valid = torch.cat([torch.ones(suffix.shape[0], len(prefix), dtype=torch.bool), suffix != 0], 1)
            for i, layer in enumerate(student.layers):
                u = layer.input_layernorm(hid[i])
                out = layer.mixer(u)
                loss = loss + ((out - mix[i]) ** 2).mean(-1)[valid].mean() / mix[i][valid].pow(2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(align_params, 1.0)
            opt.step()
            if step % 25 == 0 or step == align_steps - 1:
                log(f"{name} align step {step} rel mse {loss.item() / len(student.layers):.4f}")
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    t_kl = time.time()
    step = 0
    while step < args.steps:
        if args.time_budget and step and (step == 20 or step % 100 == 0):
            # Fit the schedule to the budget from the mean step time so far (first after 20 steps, still in
            # warm-up, then every 100 steps as the machine's load changes); the cosine follows the new count.
            if step == 20:
                cap = args.steps
            per_step = (time.time() - t_kl) / step
            args.steps = max(step + 1, min(cap, int(args.time_budget / per_step)))
            log(f"{name}: {per_step:.3f} s/step, {args.steps} steps fit the {args.time_budget:.0f} s budget")
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, warm=50)
        prefix, ids, mask = next(it)
        with torch.no_grad():
            tl = forward_shared(teacher, prefix, ids)
        sl = forward_shared(student, prefix, ids)
        loss = kl_loss(sl, tl, mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            log(f"{name} kl step {step} loss {loss.item():.4f} elapsed {time.time() - t0:.0f}s")
        if save_to and step and step % 50 == 0:
            tm.save_model(student, save_to)  # a run stopped early still leaves a usable model
            write_side_files(save_to, tok)
            record(args, name, {"steps_done": step, "of": args.steps, "align_steps": align_steps,
                                "batch": args.batch, "lr": args.lr, "seconds": time.time() - t0,
                                "kl": loss.item()})
        if args.eval_every and step and step % args.eval_every == 0:
            log("greedy acc", evaluate(student, tok, held[:100]))
        step += 1
    return time.time() - t0, loss.item()


def resume_student(args, name, folder, teacher, tok, train, held):
    """Continues the KL stage from the saved student with a fresh schedule (more steps wanted)."""
    student = tm.load_model(folder)
    prev = json.load(open(os.path.join(MODELS, "training_log.json"))).get(name, {})
    log("resuming", name, "from", prev)
    secs, loss = distill_loop(args, name, student, teacher, tok, train, held, save_to=folder)
    tm.save_model(student, folder)
    write_side_files(folder, tok)
    record(args, name, {"steps": args.steps, "batch": args.batch, "lr": args.lr, "seconds": secs, "final_kl": loss,
                        "resumed_from": prev,
                        "steps_total": args.steps + prev.get("steps_total", prev.get("steps", 0)),
                        "seconds_total": secs + prev.get("seconds_total", prev.get("seconds", 0))})
    log(name, "greedy acc on the 100 demo problems", evaluate(student, tok, held[:100]))


def stage_mil(args):
    torch.manual_seed(3)
    tok = Tok()
    train, held = load_splits(args)
    teacher = tm.load_model(TEACHER)
    mcfg = {"d_model": D, "ssm_cfg": {"expand": 1}, "rms_norm_eps": 1e-05, "vocab_size": None, "d_inner": None,
            "d_xb": KV_HEADS * HEAD_DIM, "intermediate_size": FF, "hidden_act": "silu", "n_layer": LAYERS,
            "attn_layers": MIL_ATTN_LAYERS}
    cfg = dict(teacher.cfg)
    cfg["_name_or_path"] = "ttc/teacher-llama"
    student = tm.Decoder("mil", cfg, mcfg)
    if args.resume:
        return resume_student(args, "mil", MIL, teacher, tok, train, held)
    # Initialise from the teacher (architectures.md 3.2): everything but the Mamba mixers is copied; in Mamba
    # layers C <- q_proj, B <- k_proj, x <- v_proj, out <- o_proj.
    tp = teacher.param_map()
    sp = student.param_map()
    with torch.no_grad():
        for n, p in sp.items():
            if n in tp:
                p.copy_(tp[n])
        for i in range(LAYERS):
            if i in MIL_ATTN_LAYERS:
                continue
            pre_t, pre_s = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mamba."
            sp[pre_s + "C_proj.weight"].copy_(tp[pre_t + "q_proj.weight"])
            sp[pre_s + "B_proj.weight"].copy_(tp[pre_t + "k_proj.weight"])
            sp[pre_s + "in_proj_x.weight"].copy_(tp[pre_t + "v_proj.weight"])
            sp[pre_s + "out_proj.weight"].copy_(tp[pre_t + "o_proj.weight"])
    log("mil params", sum(p.numel() for p in student.parameters()))
    secs, loss = distill_loop(args, "mil", student, teacher, tok, train, held, save_to=MIL)
    tm.save_model(student, MIL)
    write_side_files(MIL, tok)
    record(args, "mil", {"steps": args.steps, "batch": args.batch, "lr": args.lr, "seconds": secs, "final_kl": loss})
    log("mil greedy acc on the 100 demo problems", evaluate(student, tok, held[:100]))


def stage_llamba(args):
    torch.manual_seed(4)
    tok = Tok()
    train, held = load_splits(args)
    teacher = tm.load_model(TEACHER)
    cfg = {"model_type": "llamba", "vocab_size": VOCAB, "tie_embeddings": True, "pad_vocab_size_multiple": 8,
           "lm_head_bias": False, "d_model": D, "n_layer": LAYERS, "resid_dropout": 0.0, "norm_epsilon": 1e-05,
           "mlp_cfg": {"intermediate_size": FF, "bias": False, "act_fn": "silu"},
           "ssm_cfg": {"d_state": args.llamba_d_state, "n_v_heads": HEADS, "n_qk_heads": HEADS, "expand": 1, "chunk_size": 128,
                       "activation": "identity", "bias": False}}
    student = tm.Decoder("llamba", cfg)
    if args.resume:
        return resume_student(args, "llamba", LLAMBA, teacher, tok, train, held)
    # Embedding, norms and MLPs come from the teacher; mixers start fresh and are first aligned layer by layer.
    with torch.no_grad():
        student.embed.weight.copy_(teacher.embed.weight)
        student.norm.weight.copy_(teacher.norm.weight)
        for ls, lt in zip(student.layers, teacher.layers):
            ls.input_layernorm.weight.copy_(lt.input_layernorm.weight)
            ls.post_attention_layernorm.weight.copy_(lt.post_attention_layernorm.weight)
            ls.mlp.load_state_dict(lt.mlp.state_dict())
            m, a = ls.mixer, lt.mixer
            # MOHAWK-style init (attention read as an SSM): x <- V, B <- K, C <- Q (first d_state dims of each
            # head), KV heads repeated over their query heads; out_proj <- o_proj.
            rep, N = HEADS // KV_HEADS, m.N
            v = a.v_proj.weight.view(KV_HEADS, HEAD_DIM, D).repeat_interleave(rep, 0).reshape(-1, D)
            k = a.k_proj.weight.view(KV_HEADS, HEAD_DIM, D)[:, :N].repeat_interleave(rep, 0).reshape(-1, D)
            q = a.q_proj.weight.view(HEADS, HEAD_DIM, D)[:, :N].reshape(-1, D)
            di, gn = m.d_inner, m.n_qk * N
            assert v.shape[0] == di and k.shape[0] == gn and q.shape[0] == gn
            m.in_proj.weight[:di].copy_(v)
            m.in_proj.weight[di:di + gn].copy_(k)
            m.in_proj.weight[di + gn:di + 2 * gn].copy_(q)
            m.out_proj.weight.copy_(a.o_proj.weight)
            # The conv starts as the identity (last tap 1), so x, B and C pass through unchanged at first.
            m.conv1d.weight.zero_()
            m.conv1d.weight[:, 0, -1] = 1.0
            m.conv1d.bias.zero_()
    align_params = [p for l in student.layers for p in l.mixer.parameters()]
    log("llamba params", sum(p.numel() for p in student.parameters()))
    secs, loss = distill_loop(args, "llamba", student, teacher, tok, train, held, align_steps=args.align_steps,
                              align_params=align_params, save_to=LLAMBA)
    tm.save_model(student, LLAMBA)
    write_side_files(LLAMBA, tok)
    record(args, "llamba", {"align_steps": args.align_steps, "steps": args.steps, "batch": args.batch,
                            "lr": args.lr, "seconds": secs, "final_kl": loss})
    log("llamba greedy acc on the 100 demo problems", evaluate(student, tok, held[:100]))


# ------------------------------------------------------------------------------------------------------------
# Process reward model (evaluation.md section 6)


def step_labels(steps, reference_steps):
    """Step k is correct ('+') iff steps 1..k equal the reference's steps 1..k (the task's solution format is
    deterministic, so any deviation is an arithmetic or copying error); the final step must also carry the gold
    answer. Once a step is wrong every later step is wrong."""
    labels, ok = [], True
    for k, s in enumerate(steps):
        ok = ok and k < len(reference_steps) and s.strip() == reference_steps[k].strip()
        labels.append(ok)
    return labels


def prm_examples(tok, question, steps, labels):
    """Token ids of the PRM conversation and, for each step, the index of the '\\n\\n' token before the '+'
    (the scored position) with its label."""
    ids = [tok.bos]
    positions = []
    hdr_u = tok.enc("user")
    hdr_a = tok.enc("assistant")
    sep = tok.enc("\n\n")
    for k, s in enumerate(steps):
        user = (question + " " + s) if k == 0 else s
        ids += [tok.id["<|start_header_id|>"]] + hdr_u + [tok.id["<|end_header_id|>"]] + sep + tok.enc(user.strip())
        ids += [tok.eot, tok.id["<|start_header_id|>"]] + hdr_a + [tok.id["<|end_header_id|>"]] + sep
        positions.append(len(ids) - 1)
        ids += tok.enc("+") + [tok.eot]
    return ids, positions, labels


def stage_prm(args):
    torch.manual_seed(5)
    rng = random.Random(5)
    gen = torch.Generator().manual_seed(5)
    tok = Tok()
    train, held = load_splits(args)
    teacher = tm.load_model(TEACHER)
    teacher.eval()
    plus, minus = tok.enc("+")[-1], tok.enc("-")[-1]
    # Check the rendering used here is what the protocol's text rendering tokenizes to.
    q0, s0 = train[0]["question"], train[0]["solution"].split("\n\n")
    ids0, _, _ = prm_examples(tok, q0, s0, [True] * len(s0))
    assert ids0 == tok.enc(tm.render_prm(q0, s0)), "PRM token layout differs from the rendered text"
    data = []
    t0 = time.time()
    pool = train[-args.prm_problems:]
    prompts = [tok.enc(tm.render_prompt(p["question"], "sal")) for p in pool for _ in range(args.prm_samples)]
    outs = tm.generate_many(teacher, prompts, MAX_NEW, args.prm_temperature, tok.stop, gen)
    log(f"prm sampling done: {len(outs)} samples, {time.time() - t0:.0f}s")
    for i, o in enumerate(outs):
        p = pool[i // args.prm_samples]
        text = tok.dec(o)
        steps = text.split("\n\n")
        labels = step_labels(steps, p["solution"].split("\n\n"))
        if labels[-1] and extract(text) != p["answer"]:
            labels[-1] = False
        data.append(prm_examples(tok, p["question"], steps, labels))
    pos_frac = sum(sum(l) for _, _, l in data) / sum(len(l) for _, _, l in data)
    final_ok = sum(l[-1] for _, _, l in data) / len(data)
    log(f"prm data: {len(data)} samples, step '+' fraction {pos_frac:.3f}, final-correct fraction {final_ok:.3f}")
    rng.shuffle(data)
    n_val = max(1, min(200, len(data) // 10))
    val, trn = data[:n_val], data[n_val:]
    # The PRM starts from the teacher (RLHFlow's PRM is a fine-tuned Llama Instruct) and learns to predict '+'
    # or '-' at each assistant turn (train_on_inputs false: loss only on those tokens).
    prm = tm.load_model(TEACHER)
    prm.cfg = dict(prm.cfg)
    prm.cfg["_name_or_path"] = "ttc/prm-llama (process reward model; fine-tuned from ttc/teacher-llama)"
    opt = torch.optim.AdamW(prm.parameters(), lr=args.lr, weight_decay=0.0)
    # Balance the two classes so the score is informative rather than always '+'.
    w_minus = pos_frac / max(1e-6, 1 - pos_frac)
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, warm=50)
        chunk = [trn[(step * args.batch + j) % len(trn)] for j in range(args.batch)]
        L = max(len(x[0]) for x in chunk)
        ids = torch.zeros(len(chunk), L, dtype=torch.long)
        rows, cols, tgt, wts = [], [], [], []
        for r, (x, pos, lab) in enumerate(chunk):
            ids[r, :len(x)] = torch.tensor(x)
            for p_, l_ in zip(pos, lab):
                rows.append(r)
                cols.append(p_)
                tgt.append(plus if l_ else minus)
                wts.append(1.0 if l_ else min(4.0, max(1.0, w_minus)))
        logits = prm(ids)
        sel = logits[torch.tensor(rows), torch.tensor(cols)]
        loss = (F.cross_entropy(sel, torch.tensor(tgt), reduction="none") * torch.tensor(wts)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prm.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            log(f"prm step {step} loss {loss.item():.4f} elapsed {time.time() - t0:.0f}s")
    acc, auc_last = prm_eval(prm, val, plus, minus)
    log(f"prm held-out step accuracy {acc:.3f}, last-step AUC {auc_last:.3f}")
    tm.save_model(prm, PRM)
    write_side_files(PRM, tok)
    record(args, "prm", {"samples": len(data), "problems": len(pool), "samples_per_problem": args.prm_samples,
                         "sampling_temperature": args.prm_temperature, "plus_fraction": pos_frac,
                         "final_correct_fraction": final_ok, "steps": args.steps, "batch": args.batch,
                         "lr": args.lr, "seconds": time.time() - t0, "val_step_accuracy": acc,
                         "val_last_step_auc": auc_last, "plus_id": plus, "minus_id": minus})


@torch.no_grad()
def prm_eval(prm, val, plus, minus):
    correct = total = 0
    last = []
    for x, pos, lab in val:
        lg = prm(torch.tensor([x]))[0]
        r = torch.sigmoid(lg[pos, plus] - lg[pos, minus])
        correct += sum(int((rv > 0.5) == l) for rv, l in zip(r.tolist(), lab))
        total += len(lab)
        last.append((r[-1].item(), lab[-1]))
    posv = [s for s, l in last if l]
    negv = [s for s, l in last if not l]
    auc = sum((a > b) + 0.5 * (a == b) for a in posv for b in negv) / max(1, len(posv) * len(negv))
    return correct / total, auc


# ------------------------------------------------------------------------------------------------------------
# Golden fixtures and final accuracies


def stage_finish(args):
    tok = Tok()
    _, held = load_splits(args)
    results = {}
    for folder in (TEACHER, MIL, LLAMBA, PRM):
        if args.only and os.path.basename(folder) not in args.only.split(","):
            continue
        m = tm.load_model(folder)
        m.eval()
        name = os.path.basename(folder)
        if folder == PRM:
            p = held[0]
            ids = tok.enc(tm.render_prm(p["question"], p["solution"].split("\n\n")))
        else:
            ids = tok.enc(tm.render_prompt(held[0]["question"], "sal"))
        inc = tm.check_incremental(m, ids)
        dec = tm.make_golden(m, ids, 16, os.path.join(folder, "golden.safetensors"))
        entry = {"params": sum(p.numel() for p in m.parameters()), "incremental_vs_full_max_abs": inc,
                 "golden_prompt_tokens": len(ids), "golden_decode_ids": dec}
        if folder != PRM:
            hits = evaluate(m, tok, held[:args.eval_count], "sal", per_problem=True)
            entry["eval_problems"] = len(hits)
            entry["greedy_acc_heldout_sal"] = sum(hits) / len(hits)
            entry["greedy_acc_demo100_sal"] = sum(hits[:100]) / len(hits[:100])
            levels = {}
            for p, h in zip(held, hits):
                levels.setdefault(p["level"], []).append(h)
            entry["greedy_acc_by_level"] = {str(k): sum(v) / len(v) for k, v in sorted(levels.items())}
            entry["greedy_acc_demo100_plain"] = evaluate(m, tok, held[:100], "plain")
        results[name] = entry
        log(name, entry)
        record(args, "finish", {name: entry}, merge=True)


# ------------------------------------------------------------------------------------------------------------
# Model cards (README.md in each model folder), from training_log.json


def stage_cards(args):
    logd = json.load(open(os.path.join(MODELS, "training_log.json")))
    fin = logd.get("finish", {})
    rerun = "python3 tools/train/train.py {stage} --threads 1   # see tools/train/README.md (data, tokenizer first)"
    rerun_gpu = "python3 tools/train/train.py {stage} --device cuda   # about 4 min on one H200; see tools/train/README.md"
    common_data = ("Training problems: `ttc dataset synthetic --seed 1000 --min-level 1 --max-level 3` (60,000 "
                   "generated; held-out questions removed). Held-out: seed 2024 (the first 100 are the demo grid's "
                   "problems). Prompt: the GSM8K instruction (evaluation.md §2.2) in the Llama 3 chat rendering, "
                   "70% SAL form (system block, Today Date: 26 Jul 2024), 30% plain Llama 3.0 form; loss on the "
                   "assistant turn (the reference solution and `<|eot_id|>`).")

    def acc_lines(name):
        e = fin.get(name, {})
        if "greedy_acc_heldout_sal" not in e:
            return "- (not measured)\n"
        lv = ", ".join(f"level {k}: {v:.0%}" for k, v in e["greedy_acc_by_level"].items())
        return (f"- Greedy accuracy on {e['eval_problems']} held-out problems (SAL rendering): "
                f"**{e['greedy_acc_heldout_sal']:.1%}** ({lv})\n"
                f"- Greedy accuracy on the 100 demo problems: SAL rendering {e['greedy_acc_demo100_sal']:.0%}, "
                f"plain Llama 3.0 rendering {e['greedy_acc_demo100_plain']:.0%}\n")

    def golden_lines(name):
        e = fin.get(name, {})
        return (f"- `golden.safetensors`: prompt of {e.get('golden_prompt_tokens', '?')} tokens, full-forward "
                f"prefill logits, 16 greedy decode steps through the incremental path (KV cache / conv+SSM state); "
                f"incremental vs full forward agree to {e.get('incremental_vs_full_max_abs', float('nan')):.1e}.\n")

    def totals(e):
        # A resumed run records its own steps and time; the card reports the totals and the last lr/batch.
        e = dict(e)
        if "steps_total" in e:
            prev = e.get("resumed_from", {})
            e["steps_note"] = f"{prev.get('steps', '?')} + {e['steps']} (resumed)"
            e["steps"], e["seconds"] = e["steps_total"], e["seconds_total"]
            e["align_steps"] = prev.get("align_steps", e.get("align_steps"))
        return e

    def history(e):
        """The stages of a (possibly resumed) run, oldest first, one line each."""
        chain = []
        while e:
            chain.append(e)
            e = e.get("resumed_from")
        lines = []
        for i, st in enumerate(reversed(chain)):
            kl = st.get("final_kl")
            lines.append(f"  {i + 1}. {st.get('steps')} KL steps, batch {st.get('batch')}, lr {st.get('lr')}, "
                         f"{st.get('device', 'cpu (1 thread)')}, {st.get('seconds', 0) / 60:.1f} min"
                         + (f", KL {kl:.4f}" if kl is not None else ""))
        return "\n".join(lines) + "\n"

    llamba_cfg = json.load(open(os.path.join(LLAMBA, "config.json"))).get("ssm_cfg", {})
    t = logd.get("teacher", {})
    mil_log = logd.get("mil", {})
    m = totals(mil_log)
    lb = totals(logd.get("llamba", {}))
    pr = logd.get("prm", {})
    teacher_acc = fin.get("teacher-llama", {}).get("greedy_acc_heldout_sal")

    def rel(name):
        a = fin.get(name, {}).get("greedy_acc_heldout_sal")
        return f" ({a / teacher_acc:.0%} of the teacher's)" if a is not None and teacher_acc else ""

    cards = {
        TEACHER: f"""# teacher-llama

A tiny Llama 3-architecture model trained from scratch on the synthetic arithmetic task; the teacher of the
default experiment (`experiments/grids/demo.json`). Hugging Face `LlamaForCausalLM` format.

- Size: {fin.get('teacher-llama', {}).get('params', '?'):,} parameters, float32 (`model.safetensors`,
  tied embeddings, no `lm_head.weight`). 4 layers, d_model 96, 4 query heads and 2 KV heads of dim 24 (GQA),
  SwiGLU 256, RMSNorm eps 1e-5, RoPE θ=500000 with llama3 scaling, vocab 512 (byte-level BPE, Llama 3
  pre-tokenizer and special tokens; `<|eot_id|>` = 505 ends a turn).
- Data: {common_data}
- Training: AdamW (β 0.9/0.95, wd 0.05), peak lr {t.get('lr')}, warm-up 100 then cosine, batch {t.get('batch')},
  {t.get('steps', t.get('of'))} steps, {t.get('seconds', 0) / 60:.0f} min wall on 2 shared CPU cores (one thread), final loss
  {t.get('final_loss', t.get('loss', float('nan'))):.3f} (cross-entropy per assistant token).
{acc_lines('teacher-llama')}{golden_lines('teacher-llama')}- Rerun: `{rerun.format(stage='teacher')}`
""",
        MIL: f"""# student-mambainllama

A MambaInLlama hybrid distilled from `teacher-llama` the way the paper makes its students
(architectures.md §3): layers 0, 1 and 3 are Mamba-1-style layers, layer 2 stays attention
(`mamba_config.json`: `attn_layers` [2], d_xb 48, expand 1; d_state 16, d_conv 4, dt_rank 6 by default). Split
checkpoint format (`model.layers.i.mamba.{{in_proj_z,in_proj_x,B_proj,C_proj,dt_proj_down,dt_proj,conv1d,A_log,D,
out_proj}}`), `config.json` is the teacher's Llama config.

- Size: {fin.get('student-mambainllama', {}).get('params', '?'):,} parameters, float32.
- Initialisation: embeddings, norms, MLPs and the attention layer from the teacher; in Mamba layers
  `C_proj ← q_proj`, `B_proj ← k_proj`, `in_proj_x ← v_proj`, `out_proj ← o_proj`; A_log = log(1..16),
  D = 1, dt bias so that softplus(2·b) ∈ [0.001, 0.1] (the bias is applied twice, as in the reference).
- Training: token-level KL(teacher ‖ student) on the assistant tokens of the teacher's training prompts, AdamW
  (β 0.9/0.95), warm-up 50 then cosine per stage; {m.get('steps')} KL steps in {m.get('seconds', 0) / 60:.0f} min in all,
  final KL {m.get('final_kl', float('nan')):.4f}, in stages (each `--resume` of the previous):
{history(mil_log)}  {common_data}
{acc_lines('student-mambainllama').rstrip()}{rel('student-mambainllama')}
{golden_lines('student-mambainllama')}- Rerun: the stages above in order, e.g. `{rerun.format(stage='mil')}` then
  `python3 tools/train/train.py mil --resume --steps N --batch B --lr L [--device cuda]` with each stage's values.
""",
        LLAMBA: f"""# student-llamba

A Llamba-style discrete Mamba-2 model distilled from `teacher-llama` (architectures.md §4): every layer is a
DiscreteMamba2 mixer (4 heads of dim 24, 4 B/C heads, d_state {llamba_cfg.get('d_state')}, identity conv activation, no dt
parameters) with the Llama MLP. Cartesia's format: `config.json` with `model_type` "llamba", tensors under `backbone.`.

- Size: {fin.get('student-llamba', {}).get('params', '?'):,} parameters, float32, tied embeddings.
- Initialisation (MOHAWK-style, attention read as an SSM): embeddings, norms and MLPs from the teacher; in each
  mixer x ← `v_proj`, B ← `k_proj`, C ← `q_proj` (the first d_state dims of each head; KV heads repeated),
  `out_proj` ← `o_proj`; the conv starts as the identity; the decay projection is fresh.
- Training: stage 1, hidden-state alignment: {lb.get('align_steps')} steps in which each mixer, fed the teacher's
  block input, regresses the teacher's attention output (relative MSE); stage 2, token-level KL to the teacher:
  {lb.get('steps_note', lb.get('steps'))} steps, AdamW lr {lb.get('lr')}, batch {lb.get('batch')}; {lb.get('seconds', 0) / 60:.0f} min wall
  in all on {lb.get('device', 'the CPU (one thread)')}, final KL {lb.get('final_kl', float('nan')):.4f}. {common_data}
{acc_lines('student-llamba').rstrip()}{rel('student-llamba')}
{golden_lines('student-llamba')}- Rerun: `{rerun_gpu.format(stage='llamba')}` (the defaults are this model's settings; on the CPU
  drop `--device cuda`, several hours)
""",
        PRM: f"""# prm-llama

A tiny process reward model in the RLHFlow Llama3.1-8B-PRM protocol (evaluation.md §6): a plain
`LlamaForCausalLM` used as a generative classifier. The conversation is user `Q + " " + step_1`, assistant `+`,
user `step_2`, assistant `+`, …, rendered with this folder's `tokenizer_config.json` template (plain Llama 3.0, no
system block). The score of step k is `sigmoid(logit[+] − logit[−])` at the `"\\n\\n"` token that ends the k-th
`<|start_header_id|>assistant<|end_header_id|>` header; `+` = {pr.get('plus_id')}, `-` = {pr.get('minus_id')}
(one byte token each, the same ids as in Llama 3). Same architecture and tokenizer as `teacher-llama`.

- Size: {fin.get('prm-llama', {}).get('params', '?'):,} parameters, float32.
- Data: the teacher sampled {pr.get('samples_per_problem')} solutions at temperature {pr.get('sampling_temperature')}
  for each of {pr.get('problems')} training problems ({pr.get('samples')} samples). Steps are split on `"\\n\\n"`; a
  step is `+` when it and every earlier step equal the reference solution's steps (the task's solution format is
  deterministic, so a deviation is an arithmetic or copying error), the last step also needs the gold answer.
  Fraction of `+` steps: {pr.get('plus_fraction', float('nan')):.2f}; samples with a correct final step:
  {pr.get('final_correct_fraction', float('nan')):.2f}.
- Training: initialised from the teacher; cross-entropy on the `+`/`-` token at every scored position (loss on
  nothing else, like `train_on_inputs: false`), `-` weighted up to balance the classes; AdamW lr {pr.get('lr')},
  batch {pr.get('batch')}, {pr.get('steps')} steps; {pr.get('seconds', 0) / 60:.0f} min wall including sampling.
- Held-out samples ({pr.get('samples', 0) and min(200, pr.get('samples') // 10)}): step accuracy (score > 0.5 vs label)
  {pr.get('val_step_accuracy', float('nan')):.2f}; AUC of the last-step score for correct vs incorrect solutions
  {pr.get('val_last_step_auc', float('nan')):.2f}.
{golden_lines('prm-llama')}- Rerun: `{rerun.format(stage='prm')}`
""",
    }
    for folder, stage in ((MIL, "mil"), (LLAMBA, "llamba")):
        a = fin.get(os.path.basename(folder), {}).get("greedy_acc_heldout_sal")
        if a is not None and teacher_acc and a < 0.7 * teacher_acc:
            cards[folder] += (f"- **Status: undertrained.** {a:.0%} is below issue 10's bar (at least 70% of the "
                              f"teacher's {teacher_acc:.0%}). The KL was still falling when the CPU budget of the "
                              f"session ran out; continue with `python3 tools/train/train.py {stage} --resume "
                              f"--steps 1000 --threads 1`, then `train.py finish --only {os.path.basename(folder)}` "
                              f"and `train.py cards`.\n")
    for folder, text in cards.items():
        with open(os.path.join(folder, "README.md"), "w") as f:
            f.write(text)
        log("wrote", os.path.join(folder, "README.md"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["data", "tokenizer", "teacher", "mil", "llamba", "prm", "finish", "cards"])
    ap.add_argument("--work", default="/tmp/ttc-train", help="where the JSONL data lives")
    ap.add_argument("--ttc", default=os.path.join(REPO, "build", "ttc"))
    ap.add_argument("--train-count", type=int, default=60000)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--align-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="teacher: continue from the saved model")
    ap.add_argument("--only", default="", help="finish: comma-separated model folder names")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llamba-d-state", type=int, default=24,
                    help="llamba: SSM state size per head (<= the teacher's head_dim, 24, for the MOHAWK init)")
    ap.add_argument("--device", default="cpu", help="torch device for training and evaluation (cpu, cuda)")
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="mil/llamba: seconds for the KL stage; the step count is cut to fit, fixed after 20 steps")
    ap.add_argument("--prm-problems", type=int, default=250)
    ap.add_argument("--eval-count", type=int, default=100, help="held-out problems for the final accuracies")
    ap.add_argument("--prm-samples", type=int, default=8)
    ap.add_argument("--prm-temperature", type=float, default=1.0)
    args = ap.parse_args()
    # The settings the committed models were trained with (so the plain commands of README.md reproduce them).
    defaults = {"teacher": (700, 3e-3, 32), "mil": (200, 1.5e-3, 12), "llamba": (1809, 2e-3, 64),
                "prm": (150, 5e-4, 16)}
    st, lr, batch = defaults.get(args.stage, (0, 1e-3, 32))
    args.steps = st if args.steps is None else args.steps
    args.lr = lr if args.lr is None else args.lr
    args.batch = batch if args.batch is None else args.batch
    torch.set_num_threads(args.threads)
    if args.device != "cpu":
        # Every tensor the stages create (models, batches, caches) lands on the device; checkpoints are written
        # from CPU copies (ttcmodels.export_state), so the files are the same whatever trained them.
        torch.set_default_device(args.device)
    {"data": stage_data, "tokenizer": stage_tokenizer, "teacher": stage_teacher, "mil": stage_mil,
     "llamba": stage_llamba, "prm": stage_prm, "finish": stage_finish, "cards": stage_cards}[args.stage](args)


if __name__ == "__main__":
    main()
