"""Plain-PyTorch reference implementations of the three model families ttc's engine runs, for the default
experiment's tiny models: a Llama teacher (GQA, RoPE with llama3 scaling, tied embeddings), the MambaInLlama
hybrid (Mamba-1-style layers with d_xb groups and the double dt bias, split checkpoint format) and Llamba
(discrete Mamba-2, `backbone.` names). The math follows ../shared/reference/architectures.md (sections 1-4)
line by line, because the C++ engine implements the same formulas and is checked against golden logits made
here. Every model has a full-sequence forward (training, prefill) and an incremental step (decode) that
carries a KV cache or a conv/SSM state; check_incremental() verifies the two agree.

Offline tool only: never imported by the build or the tests.
"""

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")

# The GSM8K instruction of evaluation.md 2.2 (lm-eval llama3 instruct gsm8k doc_to_text).
GSM8K_TEMPLATE = ("Given the following problem, reason and give a final answer to the problem.\nProblem: {question}\n"
                  "Your response should end with \"The final answer is [answer]\" where [answer] is the response to "
                  "the problem.")
DATE = "26 Jul 2024"


def render_prompt(question, style="sal"):
    """Llama 3 chat rendering of the zero-shot GSM8K user turn with the generation prompt (evaluation.md 2.3).

    style "sal": the system block with the date lines is always emitted (SAL / Llama 3.1+ template).
    style "plain": Llama 3.0 template, no system block. Training mixes both so the models follow either."""
    user = GSM8K_TEMPLATE.format(question=question)
    head = "<|begin_of_text|>"
    if style == "sal":
        head += ("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                 f"Today Date: {DATE}\n\n<|eot_id|>")
    return head + f"<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


def render_prm(question, steps):
    """The PRM conversation of evaluation.md 6.3 in the Llama 3.0 style (no system block), as text, plus the
    character offsets are not needed: score positions are found by token pattern."""
    out = "<|begin_of_text|>"
    for i, s in enumerate(steps):
        user = (question + " " + s) if i == 0 else s
        out += f"<|start_header_id|>user<|end_header_id|>\n\n{user.strip()}<|eot_id|>"
        out += "<|start_header_id|>assistant<|end_header_id|>\n\n+<|eot_id|>"
    return out


# --------------------------------------------------------------------------------------------------------------
# Shared pieces


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        v = x.float()
        v = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * v.to(x.dtype)


class MLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.gate_proj = nn.Linear(d, ff, bias=False)
        self.up_proj = nn.Linear(d, ff, bias=False)
        self.down_proj = nn.Linear(ff, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def llama3_inv_freq(cfg):
    hd = cfg["head_dim"]
    theta = cfg["rope_theta"]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        orig = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        out = []
        for f, w in zip(inv.tolist(), wavelen.tolist()):
            if w < orig / high:
                out.append(f)
            elif w > orig / low:
                out.append(f / factor)
            else:
                s = (orig / w - low) / (high - low)
                out.append((1 - s) * f / factor + s * f)
        inv = torch.tensor(out, dtype=torch.float64)
    return inv.float()


def rope(x, pos, inv_freq):
    """x: [B, H, T, hd]; pos: [T] int positions. Half-split (NeoX) rotation, angles in fp32."""
    ang = pos.float()[:, None] * inv_freq[None, :]  # [T, hd/2]
    cos, sin = ang.cos(), ang.sin()
    cos = torch.cat([cos, cos], -1)
    sin = torch.cat([sin, sin], -1)
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, H, Hkv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.H, self.Hkv, self.hd = H, Hkv, hd
        self.q_proj = nn.Linear(d, H * hd, bias=False)
        self.k_proj = nn.Linear(d, Hkv * hd, bias=False)
        self.v_proj = nn.Linear(d, Hkv * hd, bias=False)
        self.o_proj = nn.Linear(H * hd, d, bias=False)
        self.register_buffer("inv_freq", llama3_inv_freq(cfg), persistent=False)

    def forward(self, u, cache=None, pos0=0):
        """u: [B, T, d]. With cache (a dict), appends K/V and attends over everything cached."""
        B, T, _ = u.shape
        q = self.q_proj(u).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k_proj(u).view(B, T, self.Hkv, self.hd).transpose(1, 2)
        v = self.v_proj(u).view(B, T, self.Hkv, self.hd).transpose(1, 2)
        pos = torch.arange(pos0, pos0 + T)
        q, k = rope(q, pos, self.inv_freq), rope(k, pos, self.inv_freq)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        rep = self.H // self.Hkv
        k = k.repeat_interleave(rep, 1)
        v = v.repeat_interleave(rep, 1)
        S = k.shape[2]
        if T == S:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # Decode / continuation: query t (absolute S-T+t) sees keys 0..S-T+t.
            mask = torch.arange(S)[None, :] <= (torch.arange(T)[:, None] + S - T)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.H * self.hd))


def causal_conv(x, w, b, state=None):
    """Depthwise causal conv. x: [B, T, C]; w: [C, 1, K]; returns (y [B,T,C], new_state [B, C, K]) where the
    state holds the last K pre-conv inputs (left-zero-padded)."""
    B, T, C = x.shape
    K = w.shape[-1]
    xt = x.transpose(1, 2)  # [B, C, T]
    prev = state if state is not None else x.new_zeros(B, C, K)
    full = torch.cat([prev[:, :, 1:], xt], -1)  # K-1 past inputs + T new
    y = F.conv1d(full, w, b, groups=C)  # [B, C, T]
    new_state = torch.cat([prev, xt], -1)[:, :, -K:]
    return y.transpose(1, 2), new_state


# --------------------------------------------------------------------------------------------------------------
# MambaInLlama Mamba layer (architectures.md 3.3)


class MilMamba(nn.Module):
    def __init__(self, d, d_inner, d_xb, d_state=16, d_conv=4):
        super().__init__()
        self.d, self.d_inner, self.d_xb, self.N = d, d_inner, d_xb, d_state
        self.R = math.ceil(d / 16)
        self.rep = d_inner // d_xb
        self.in_proj_z = nn.Linear(d, d_inner, bias=False)
        self.in_proj_x = nn.Linear(d, d_xb, bias=False)
        self.B_proj = nn.Linear(d, d_xb, bias=False)
        self.C_proj = nn.Linear(d, d_inner, bias=False)
        self.dt_proj_down = nn.Linear(d, self.R, bias=False)
        self.dt_proj = nn.Linear(self.R, d_inner, bias=True)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d, bias=False)
        # Mamba's dt init: softplus(2*b) in [1e-3, 1e-1] (the bias is applied twice, so halve the inverse).
        dt = torch.exp(torch.rand(d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        with torch.no_grad():
            self.dt_proj.bias.copy_((dt + torch.log(-torch.expm1(-dt))) / 2)

    def expand_groups(self, v, groups):
        """[B, T, groups*N] -> per-group rows repeated rep times: [B, T, groups*rep, N]."""
        B, T, _ = v.shape
        return v.view(B, T, groups, 1, self.N).expand(B, T, groups, self.rep, self.N).reshape(
            B, T, groups * self.rep, self.N)

    def forward(self, u, cache=None):
        B, T, _ = u.shape
        N = self.N
        Gx, Gc = self.d_xb // N, self.d_inner // N
        z = self.in_proj_z(u)
        xs = self.in_proj_x(u)
        b = self.B_proj(u)
        c = self.C_proj(u)
        r = self.dt_proj_down(u)
        delta = F.softplus(self.dt_proj(r) + self.dt_proj.bias)  # bias applied twice
        xhat = self.expand_groups(xs, Gx).reshape(B, T, self.d_inner)
        conv_state = cache.get("conv") if cache is not None else None
        xc, new_conv = causal_conv(xhat, self.conv1d.weight, self.conv1d.bias, conv_state)
        xc = F.silu(xc)
        Bg = self.expand_groups(b, Gx)  # [B, T, Gc, N]
        Cg = c.view(B, T, Gc, N)
        A = -torch.exp(self.A_log.float())  # [d_inner, N]
        h = cache.get("ssm") if cache is not None and "ssm" in cache else u.new_zeros(B, self.d_inner, N)
        ys = []
        for t in range(T):
            dA = torch.exp(delta[:, t, :, None] * A)  # [B, d_inner, N]
            Bt = Bg[:, t].repeat_interleave(N, 1)  # [B, d_inner, N]: channel ch uses group ch // N
            Ct = Cg[:, t].repeat_interleave(N, 1)
            h = dA * h + (delta[:, t] * xc[:, t])[:, :, None] * Bt
            ys.append((h * Ct).sum(-1))
        y = torch.stack(ys, 1) + self.D * xc
        if cache is not None:
            cache["conv"], cache["ssm"] = new_conv, h
        return self.out_proj(y * F.silu(z))


# --------------------------------------------------------------------------------------------------------------
# Llamba discrete Mamba-2 mixer (architectures.md 4.3)


class DiscreteMamba2(nn.Module):
    def __init__(self, d, n_v, n_qk, d_state, expand=1, d_conv=4):
        super().__init__()
        self.d_inner = expand * d
        self.n_v, self.n_qk, self.N = n_v, n_qk, d_state
        self.P = self.d_inner // n_v
        self.conv_dim = self.d_inner + 2 * n_qk * d_state
        self.in_proj = nn.Linear(d, 2 * self.d_inner + 2 * n_qk * d_state + n_v, bias=False)
        self.z_bias = nn.Parameter(torch.zeros(self.d_inner))
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim, bias=True)
        self.D = nn.Parameter(torch.ones(n_v))
        self.out_proj = nn.Linear(self.d_inner, d, bias=False)

    def forward(self, u, cache=None):
        Bsz, T, _ = u.shape
        H, P, N, G = self.n_v, self.P, self.N, self.n_qk
        proj = self.in_proj(u)
        xBC, z, ell = torch.split(proj, [self.conv_dim, self.d_inner, H], -1)
        conv_state = cache.get("conv") if cache is not None else None
        xBC, new_conv = causal_conv(xBC, self.conv1d.weight, self.conv1d.bias, conv_state)  # identity act
        x, Bm, Cm = torch.split(xBC, [self.d_inner, G * N, G * N], -1)
        x = x.view(Bsz, T, H, P)
        Bm = Bm.view(Bsz, T, G, N).repeat_interleave(H // G, 2)  # [B, T, H, N]
        Cm = Cm.view(Bsz, T, G, N).repeat_interleave(H // G, 2)
        delta = F.softplus(ell.float())  # [B, T, H]
        S0 = cache.get("ssm") if cache is not None and "ssm" in cache else None
        # Quadratic (SSD) form: y_t = sum_{s<=t} exp(-(cum_t - cum_s)) (C_t.B_s) x_s, plus the carried state.
        cum = torch.cumsum(delta, 1).transpose(1, 2)  # [B, H, T]
        diff = cum[:, :, :, None] - cum[:, :, None, :]  # [B, H, t, s]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        decay = torch.exp(diff.masked_fill(~causal, float("inf")).neg())
        G_ts = torch.einsum("bthn,bshn->bhts", Cm, Bm)
        y = torch.einsum("bhts,bshp->bthp", G_ts * decay, x)
        if S0 is not None:
            carry = torch.exp(-cum).transpose(1, 2)  # [B, T, H]: decay from the carried state to t
            y = y + torch.einsum("bhpn,bthn->bthp", S0, Cm) * carry[..., None]
        # Final state S_T = sum_s exp(-(cum_T - cum_s)) x_s (x) B_s (+ decayed S0).
        w_last = torch.exp(-(cum[:, :, -1:] - cum))  # [B, H, T]
        S = torch.einsum("bhs,bshp,bshn->bhpn", w_last, x, Bm)
        if S0 is not None:
            S = S + S0 * torch.exp(-cum[:, :, -1])[:, :, None, None]
        y = y + self.D[None, None, :, None] * x
        y = y.reshape(Bsz, T, self.d_inner)
        if cache is not None:
            cache["conv"], cache["ssm"] = new_conv, S
        return self.out_proj(y * F.silu(z + self.z_bias))


# --------------------------------------------------------------------------------------------------------------
# Decoder


class Block(nn.Module):
    def __init__(self, d, ff, mixer):
        super().__init__()
        self.input_layernorm = RMSNorm(d)
        self.post_attention_layernorm = RMSNorm(d)
        self.mixer = mixer
        self.mlp = MLP(d, ff)

    def forward(self, x, cache=None, pos0=0):
        u = self.input_layernorm(x)
        if isinstance(self.mixer, Attention):
            m = self.mixer(u, cache, pos0)
        else:
            m = self.mixer(u, cache)
        h = x + m
        return h + self.mlp(self.post_attention_layernorm(h)), m


class Decoder(nn.Module):
    """kind: "llama" | "mil" | "llamba". cfg: the HF Llama config dict (llama, mil) or the Llamba config."""

    def __init__(self, kind, cfg, mamba_cfg=None):
        super().__init__()
        self.kind, self.cfg, self.mamba_cfg = kind, cfg, mamba_cfg
        if kind == "llamba":
            d, L, V, ff = cfg["d_model"], cfg["n_layer"], cfg["vocab_size"], cfg["mlp_cfg"]["intermediate_size"]
            s = cfg["ssm_cfg"]
            mixers = [DiscreteMamba2(d, s["n_v_heads"], s["n_qk_heads"], s["d_state"], s["expand"]) for _ in range(L)]
        else:
            d, L, V, ff = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
            attn = set(range(L)) if kind == "llama" else set(mamba_cfg["attn_layers"])
            mixers = []
            for i in range(L):
                if i in attn:
                    mixers.append(Attention(cfg))
                else:
                    d_inner = mamba_cfg["d_inner"] or mamba_cfg["ssm_cfg"].get("expand", 1) * d
                    mixers.append(MilMamba(d, d_inner, mamba_cfg["d_xb"]))
        self.embed = nn.Embedding(V, d)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList([Block(d, ff, m) for m in mixers])
        self.norm = RMSNorm(d)

    def forward(self, ids, caches=None, pos0=0, return_hidden=False):
        x = self.embed(ids)
        hidden, mixer_outs = [x], []
        for i, layer in enumerate(self.layers):
            x, m = layer(x, None if caches is None else caches[i], pos0)
            hidden.append(x)
            mixer_outs.append(m)
        logits = self.norm(x) @ self.embed.weight.t()
        if return_hidden:
            return logits, hidden, mixer_outs
        return logits

    def new_caches(self):
        return [dict() for _ in self.layers]

    # ---- checkpoint names (architectures.md 2.2, 3.2 (a), 4.2)
    def param_map(self):
        """Checkpoint tensor name -> the live Parameter, in the family's real checkpoint format."""
        sd = {}
        if self.kind == "llamba":
            sd["backbone.embedding.weight"] = self.embed.weight
            for i, layer in enumerate(self.layers):
                p = f"backbone.layers.{i}."
                m = layer.mixer
                sd[p + "input_layernorm.weight"] = layer.input_layernorm.weight
                sd[p + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
                sd[p + "mixer.in_proj.weight"] = m.in_proj.weight
                sd[p + "mixer.z_bias"] = m.z_bias
                sd[p + "mixer.conv1d.weight"] = m.conv1d.weight
                sd[p + "mixer.conv1d.bias"] = m.conv1d.bias
                sd[p + "mixer.D"] = m.D
                sd[p + "mixer.out_proj.weight"] = m.out_proj.weight
                for n in ("gate_proj", "up_proj", "down_proj"):
                    sd[p + f"mlp.{n}.weight"] = getattr(layer.mlp, n).weight
            sd["backbone.final_layernorm.weight"] = self.norm.weight
        else:
            sd["model.embed_tokens.weight"] = self.embed.weight
            for i, layer in enumerate(self.layers):
                p = f"model.layers.{i}."
                m = layer.mixer
                sd[p + "input_layernorm.weight"] = layer.input_layernorm.weight
                sd[p + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
                if isinstance(m, Attention):
                    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                        sd[p + f"self_attn.{n}.weight"] = getattr(m, n).weight
                else:
                    for n in ("in_proj_z", "in_proj_x", "B_proj", "C_proj", "dt_proj_down", "out_proj"):
                        sd[p + f"mamba.{n}.weight"] = getattr(m, n).weight
                    sd[p + "mamba.dt_proj.weight"] = m.dt_proj.weight
                    sd[p + "mamba.dt_proj.bias"] = m.dt_proj.bias
                    sd[p + "mamba.conv1d.weight"] = m.conv1d.weight
                    sd[p + "mamba.conv1d.bias"] = m.conv1d.bias
                    sd[p + "mamba.A_log"] = m.A_log
                    sd[p + "mamba.D"] = m.D
                for n in ("gate_proj", "up_proj", "down_proj"):
                    sd[p + f"mlp.{n}.weight"] = getattr(layer.mlp, n).weight
            sd["model.norm.weight"] = self.norm.weight
        return sd

    def export_state(self):
        return {k: v.detach().float().cpu().contiguous().clone() for k, v in self.param_map().items()}

    def import_state(self, sd):
        params = self.param_map()
        missing, extra = set(params) - set(sd), set(sd) - set(params)
        if missing or extra:
            raise ValueError(f"checkpoint mismatch: missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
        with torch.no_grad():
            for n, p in params.items():
                if p.shape != sd[n].shape:
                    raise ValueError(f"{n}: shape {tuple(sd[n].shape)} != {tuple(p.shape)}")
                p.copy_(sd[n].float())


def llama_config(vocab, d, layers, heads, kv_heads, head_dim, ff, bos, eos, name):
    return {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": bos, "eos_token_id": eos, "head_dim": head_dim, "hidden_act": "silu",
        "hidden_size": d, "initializer_range": 0.02, "intermediate_size": ff, "max_position_embeddings": 131072,
        "mlp_bias": False, "model_type": "llama", "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "float32", "use_cache": True,
        "vocab_size": vocab, "_name_or_path": name,
    }


def save_model(model, folder, extra_files=None):
    os.makedirs(folder, exist_ok=True)
    save_file(model.export_state(), os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(model.cfg, f, indent=2)
        f.write("\n")
    if model.kind == "mil":
        with open(os.path.join(folder, "mamba_config.json"), "w") as f:
            json.dump(model.mamba_cfg, f, indent=4)
    for name, content in (extra_files or {}).items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(content)


def load_model(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    if cfg.get("model_type") == "llamba":
        kind, mcfg = "llamba", None
    elif os.path.exists(os.path.join(folder, "mamba_config.json")):
        kind, mcfg = "mil", json.load(open(os.path.join(folder, "mamba_config.json")))
    else:
        kind, mcfg = "llama", None
    m = Decoder(kind, cfg, mcfg)
    m.import_state(load_file(os.path.join(folder, "model.safetensors")))
    return m


# --------------------------------------------------------------------------------------------------------------
# Incremental decoding


def expand_caches(caches, n):
    return [{k: v.expand(n, *v.shape[1:]).contiguous() for k, v in c.items()} for c in caches]


@torch.no_grad()
def generate(model, prompt_ids, n, max_new, temperature, stop_ids, generator=None):
    """Prefill once, share the state among n samples, decode in lockstep. Returns a list of n token lists
    (without the stop token) and whether each stopped."""
    caches = model.new_caches()
    ids = torch.tensor([prompt_ids])
    logits = model(ids, caches, 0)[:, -1]
    caches = expand_caches(caches, n)
    logits = logits.expand(n, -1)
    out = [[] for _ in range(n)]
    done = [False] * n
    pos = len(prompt_ids)
    for _ in range(max_new):
        if temperature <= 0:
            tok = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, -1)
            tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
        for i in range(n):
            if not done[i]:
                t = int(tok[i])
                if t in stop_ids:
                    done[i] = True
                else:
                    out[i].append(t)
        if all(done):
            break
        logits = model(tok[:, None], caches, pos)[:, -1]
        pos += 1
    return out, done


@torch.no_grad()
def generate_group(model, prompts, max_new, temperature, stop_ids, generator=None):
    """One sample per prompt for prompts of equal length, decoded as one batch. Returns token lists."""
    assert len({len(p) for p in prompts}) == 1
    n = len(prompts)
    caches = model.new_caches()
    logits = model(torch.tensor(prompts), caches, 0)[:, -1]
    out = [[] for _ in range(n)]
    done = [False] * n
    pos = len(prompts[0])
    for _ in range(max_new):
        if temperature <= 0:
            tok = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, -1)
            tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
        for i in range(n):
            if not done[i]:
                t = int(tok[i])
                if t in stop_ids:
                    done[i] = True
                else:
                    out[i].append(t)
        if all(done):
            break
        logits = model(tok[:, None], caches, pos)[:, -1]
        pos += 1
    return out


def generate_many(model, prompts, max_new, temperature, stop_ids, generator=None, max_batch=64):
    """generate_group over prompts of any lengths: groups equal-length prompts (no padding needed)."""
    by_len = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    out = [None] * len(prompts)
    for _, idx in sorted(by_len.items()):
        for j in range(0, len(idx), max_batch):
            chunk = idx[j:j + max_batch]
            res = generate_group(model, [prompts[i] for i in chunk], max_new, temperature, stop_ids, generator)
            for i, r in zip(chunk, res):
                out[i] = r
    return out


@torch.no_grad()
def check_incremental(model, ids):
    """Max |difference| between full-sequence logits and prefill-half + step-by-step logits."""
    full = model(torch.tensor([ids]))[0]
    caches = model.new_caches()
    half = len(ids) // 2
    parts = [model(torch.tensor([ids[:half]]), caches, 0)[0]]
    for t in range(half, len(ids)):
        parts.append(model(torch.tensor([[ids[t]]]), caches, t)[0])
    inc = torch.cat(parts, 0)
    return (full - inc).abs().max().item()


@torch.no_grad()
def make_golden(model, prompt_ids, steps, path):
    """golden.safetensors in the layout of ../shared/golden/models/*: prefill logits of every prompt position
    (full forward), then greedy decode through the incremental path."""
    caches = model.new_caches()
    prefill = model(torch.tensor([prompt_ids]), caches, 0)[0].float()
    tok = int(prefill[-1].argmax())
    dec_ids, dec_logits = [], []
    pos = len(prompt_ids)
    for _ in range(steps):
        dec_ids.append(tok)
        lg = model(torch.tensor([[tok]]), caches, pos)[0, -1].float()
        dec_logits.append(lg)
        tok = int(lg.argmax())
        pos += 1
    save_file({"prompt_ids": torch.tensor(prompt_ids, dtype=torch.int64), "prefill_logits": prefill.contiguous(),
               "decode_ids": torch.tensor(dec_ids, dtype=torch.int64),
               "decode_logits": torch.stack(dec_logits).contiguous()}, path)
    return dec_ids
