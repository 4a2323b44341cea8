"""The PyTorch peer of Interleave's reference hybrid (docs/design.md#benchmarks): the same model, written in plain
PyTorch as a careful user would, with no custom kernels.

Run by `pnpm bench --peer` (bench/sections/peer.ts), which hands it the model as a JSON spec
taken from configs/bench-hybrid.yaml, so both sides build the same layers from one source:

    python bench/peer/hybrid.py train --spec spec.json   # training throughput, one JSON line
    python bench/peer/hybrid.py check --spec spec.json --weights model.safetensors --data data.safetensors
                                                          # our weights, strict load: same logits?

Module and parameter names follow Interleave's checkpoints (`layers.3.mixer.in_proj.weight`),
so `check` loads an Interleave `model.safetensors` with `strict=True`.

The Mamba mixer is python/interleave_reference/mamba.py, the one the export tests check our
weights with; its selective scan is a loop over time (`--scan parallel`, also called `hillis-steele`; `loop` is also `sequential`:
a Hillis–Steele scan, for comparison; on a CPU it does log2(L) times the work, on a GPU it is
the fast one at small batches).
`--device cuda` runs on the GPU in float32 with TF32 off (matmuls and cuDNN), as Interleave's
webgpu backend computes, and reports the peak GPU memory (torch.cuda.max_memory_allocated).
"""

import argparse
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# The shared PyTorch blocks live in <repo>/python, importable however this script is started.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from interleave_reference.mamba import Mamba  # noqa: E402


# ---------------------------------------------------------------- blocks


class GatedMlp(nn.Module):
    """down(act(gate(x)) * up(x)), hidden = round(expansion * d_model), no biases."""

    def __init__(self, d_model: int, expansion: float, activation: str):
        super().__init__()
        hidden = round(expansion * d_model)
        self.gate_proj = nn.Linear(d_model, hidden, bias=False)
        self.up_proj = nn.Linear(d_model, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d_model, bias=False)
        # Exact (erf) GELU, as Interleave's gated MLP and PyTorch's default nn.GELU.
        self.activation = {"gelu": F.gelu, "silu": F.silu}[activation]

    def forward(self, x):
        return self.down_proj(self.activation(self.gate_proj(x)) * self.up_proj(x))


# The scans by the names the command line accepts (`hillis-steele` and `sequential` name the
# two formulations as the GPU benchmarks do).
SCAN_CHOICES = {"loop": "loop", "sequential": "loop", "parallel": "parallel", "hillis-steele": "parallel"}
# The other formulation, for `check`'s comparison of the two.
OTHER_SCAN = {"loop": "parallel", "sequential": "parallel", "parallel": "loop", "hillis-steele": "loop"}


def rotate(x, cos, sin):
    """RoPE in the rotate-halves form: pairs (i, i + d/2) turned by position * base^(-2i/d)."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


class Attention(nn.Module):
    """Causal multi-head attention with RoPE; a window w lets query t see keys in (t - w, t]."""

    def __init__(self, d_model, heads, kv_heads, window, rope_base):
        super().__init__()
        self.heads = heads
        self.kv_heads = kv_heads or heads
        self.head_dim = d_model // heads
        self.window = window
        self.rope_base = rope_base
        self.q_proj = nn.Linear(d_model, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, d_model, bias=False)
        self._cache = {}

    def tables(self, length, device):
        """cos/sin of the rotary angles and the boolean visibility mask, made once per length."""
        if length not in self._cache:
            half = self.head_dim // 2
            inverse = self.rope_base ** (-2 * torch.arange(half, dtype=torch.float64) / self.head_dim)
            angles = torch.arange(length, dtype=torch.float64)[:, None] * inverse[None, :]
            query = torch.arange(length)[:, None]
            key = torch.arange(length)[None, :]
            visible = key <= query
            if self.window is not None:
                visible = visible & (key > query - self.window)
            self._cache[length] = (
                angles.cos().float().to(device),
                angles.sin().float().to(device),
                visible.to(device),
            )
        return self._cache[length]

    def forward(self, x):
        batch, length, _ = x.shape
        cos, sin, visible = self.tables(length, x.device)
        split = lambda t, n: t.view(batch, length, n, self.head_dim).transpose(1, 2)  # noqa: E731
        q = rotate(split(self.q_proj(x), self.heads), cos, sin)
        k = rotate(split(self.k_proj(x), self.kv_heads), cos, sin)
        v = split(self.v_proj(x), self.kv_heads)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        # PyTorch's fused attention (scale 1/sqrt(head_dim)); the window is its boolean mask.
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
        return self.o_proj(mixed.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim))


def build_mixer(layer, d_model, scan):
    config = layer["config"]
    if layer["block"] == "mamba":
        return Mamba(
            d_model,
            d_state=config["d_state"],
            d_conv=config["d_conv"],
            expand=config["expand"],
            dt_rank=config["dt_rank"],
            dt_min=config["dt_min"],
            dt_max=config["dt_max"],
            dt_init_floor=config["dt_init_floor"],
            scan=SCAN_CHOICES[scan],
        )
    if layer["block"] in ("swa", "attention"):
        return Attention(
            d_model, config["heads"], config.get("kv_heads"), config.get("window"), config["rope_base"]
        )
    raise SystemExit(f"hybrid.py: the peer has no '{layer['block']}' block (it has mamba, swa, attention)")


class Layer(nn.Module):
    """Pre-norm residual layer: x + mixer(norm(x)), then x + mlp(mlp_norm(x)) when it has an MLP."""

    def __init__(self, layer, d_model, eps, scan):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=eps)
        self.mixer = build_mixer(layer, d_model, scan)
        mlp = layer.get("mlp")
        if mlp is not None:
            self.mlp_norm = nn.RMSNorm(d_model, eps=eps)
            self.mlp = GatedMlp(d_model, mlp["expansion"], mlp["activation"])
        else:
            self.mlp = None

    def forward(self, x):
        x = x + self.mixer(self.norm(x))
        if self.mlp is not None:
            x = x + self.mlp(self.mlp_norm(x))
        return x


class LanguageModel(nn.Module):
    """tokens -> embedding -> layers -> RMSNorm -> tied head (the embedding matrix) -> logits."""

    def __init__(self, spec, scan):
        super().__init__()
        model = spec["model"]
        if not model["tie_embeddings"]:
            raise SystemExit("hybrid.py: the peer implements the tied head only")
        d_model = model["d_model"]
        self.embedding = nn.Embedding(model["vocab_size"], d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.layers = nn.ModuleList(Layer(layer, d_model, model["norm_eps"], scan) for layer in model["layers"])
        self.norm_f = nn.RMSNorm(d_model, eps=model["norm_eps"])

    def forward(self, tokens):
        x = self.embedding(tokens)
        for layer in self.layers:
            x = layer(x)
        return F.linear(self.norm_f(x), self.embedding.weight)


# ---------------------------------------------------------------- training


def parameter_groups(model, weight_decay):
    """Interleave's decay rule: matrices decay; vectors (norms, biases, D) and A_log do not."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or name.endswith("A_log") else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def learning_rate_factor(step, train):
    """Linear warm-up, then cosine decay to min_lr_ratio, as Interleave's schedule."""
    warmup = train["schedule"]["warmup_steps"]
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, train["steps"] - warmup - 1))
    ratio = train["schedule"]["min_lr_ratio"]
    return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def random_batch(spec, generator, device):
    """MQAR-shaped batch: tokens, targets, and num_kv_pairs supervised positions per sequence.
    The peer times compute, which does not depend on what the tokens say."""
    batch, length, vocab = spec["batch_size"], spec["seq_len"], spec["model"]["vocab_size"]
    inputs = torch.randint(vocab, (batch, length), generator=generator)
    targets = torch.randint(vocab, (batch, length), generator=generator)
    mask = torch.zeros(batch, length)
    for row in range(batch):
        mask[row, torch.randperm(length, generator=generator)[: spec["num_kv_pairs"]]] = 1.0
    return inputs.to(device), targets.to(device), mask.to(device)


def train_step(model, optimizer, scheduler, spec, generator, device):
    inputs, targets, mask = random_batch(spec, generator, device)
    logits = model(inputs)
    vocab = logits.shape[-1]
    per_position = F.cross_entropy(logits.view(-1, vocab), targets.view(-1), reduction="none")
    count = mask.sum().clamp(min=1)
    loss = (per_position * mask.view(-1)).sum() / count
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_clip = spec["train"]["grad_clip"]
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    with torch.no_grad():
        correct = ((logits.argmax(-1) == targets).float() * mask).sum()
    # Reading the loss back ends the step, as Interleave's Trainer does.
    return loss.item(), correct.item()


def command_train(spec, args):
    torch.manual_seed(spec["seed"])
    model = LanguageModel(spec, args.scan).to(args.device)
    train = spec["train"]
    optimizer_config = train["optimizer"]
    optimizer = torch.optim.AdamW(
        parameter_groups(model, optimizer_config["weight_decay"]),
        lr=optimizer_config["lr"],
        betas=tuple(optimizer_config["betas"]),
        eps=optimizer_config["eps"],
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, train))
    generator = torch.Generator().manual_seed(spec["seed"])
    for _ in range(args.warmup):
        train_step(model, optimizer, scheduler, spec, generator, args.device)
    samples = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        train_step(model, optimizer, scheduler, spec, generator, args.device)
        synchronize(args.device)
        samples.append((time.perf_counter() - started) * 1000)
    step_ms = statistics.median(samples)
    tokens = spec["batch_size"] * spec["seq_len"]
    report(
        {
            "parameters": sum(parameter.numel() for parameter in model.parameters()),
            "step_ms": step_ms,
            "samples_ms": samples,
            "tokens_per_step": tokens,
            "tokens_per_second": tokens / (step_ms / 1000),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            **gpu_report(args.device),
        }
    )


# ---------------------------------------------------------------- equivalence check


def command_check(spec, args):
    """Loads Interleave's weights into the peer (strict: every name and shape must match) and
    compares logits on Interleave's tokens; also checks the two scans against each other."""
    from safetensors.torch import load_file

    model = LanguageModel(spec, args.scan)
    model.load_state_dict(load_file(args.weights), strict=True)
    model.to(args.device)
    data = load_file(args.data, device=args.device)
    with torch.no_grad():
        logits = model(data["tokens"].long())
        other = LanguageModel(spec, OTHER_SCAN[args.scan])
        other.load_state_dict(model.state_dict(), strict=True)
        other_logits = other.to(args.device)(data["tokens"].long())
    report(
        {
            "parameters": sum(parameter.numel() for parameter in model.parameters()),
            "max_abs_logit_difference": (logits - data["logits"]).abs().max().item(),
            "max_abs_scan_difference": (logits - other_logits).abs().max().item(),
        }
    )


def synchronize(device):
    """A step's time includes the GPU's work: wait for it (loss.item() already does, mostly)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def gpu_report(device):
    if not device.startswith("cuda"):
        return {}
    return {
        "device": torch.cuda.get_device_name(device),
        "peak_gpu_bytes": torch.cuda.max_memory_allocated(device),
    }


def use_device(device):
    """float32 as Interleave computes it: no TF32 in matmuls or convolutions on the GPU."""
    if not device.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        sys.exit(f"hybrid.py: --device {device}, but torch {torch.__version__} sees no CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def report(result):
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["train", "check"])
    parser.add_argument("--spec", required=True, help="the model and training settings, JSON (from peer.ts)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scan", choices=sorted(SCAN_CHOICES), default="loop")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (cuda:N) for the GPU")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", help="check: an Interleave model.safetensors")
    parser.add_argument("--data", help="check: tokens and Interleave's logits, safetensors")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    use_device(args.device)
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    if args.command == "train":
        command_train(spec, args)
    else:
        if not args.weights or not args.data:
            parser.error("check needs --weights and --data")
        command_check(spec, args)


if __name__ == "__main__":
    sys.exit(main())
