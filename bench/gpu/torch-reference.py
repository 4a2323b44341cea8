"""PyTorch eager's side of the GPU figures in docs/gpu.md, measured in the same session as
Interleave's (bench/gpu/kernel-probe.ts): one JSON line per figure.

    python bench/gpu/torch-reference.py [tinyop] [matmul] [scan] [zoology-attention] [zoology-mamba]

CUDA float32 with TF32 off (matmuls and cuDNN), as Interleave's webgpu backend computes. Times are
wall-clock around work that ends in torch.cuda.synchronize(), median of the timed repeats.

- tinyop: a chain of 500 `add`s on 1,024 floats, per op.
- matmul: 4096 x 4096 by 4096 x 4096, TFLOP/s.
- scan: Mamba's selective scan forward + backward at the reference hybrid's shape (B16, L1024,
  d_inner 512, d_state 16), Hillis-Steele and the sequential loop.
- zoology-attention / zoology-mamba: a training step (forward, backward, AdamW) of Zoology's MQAR
  models at batch 512 x 64, vocab 8,192, d_model 64: 2 layers of 1-head attention with learned
  positions, or 4 Mamba layers; pre-norm residual blocks without MLPs, tied embeddings. The head
  and loss run on every position, as Zoology's code does.
- zoology-attention-supervised / zoology-mamba-supervised: the same step with the head and loss on
  the 4 supervised (query) positions per sequence alone, as Interleave's `train.head_rows:
  supervised` does.
"""

import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from interleave_reference.mamba import Mamba, selective_scan_loop, selective_scan_parallel  # noqa: E402

DEVICE = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def report(figure, **values):
    print(json.dumps({"figure": figure, **values}), flush=True)


def timed(fn, warmup=3, repeats=10):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def tiny_op():
    x = torch.zeros(1024, device=DEVICE)
    one = torch.ones(1024, device=DEVICE)

    def chain():
        y = x
        for _ in range(500):
            y = y + one
        return y

    ms = timed(chain)
    report("tiny op (chain of 500 adds on 1,024 floats)", usPerOp=ms * 1000 / 500)


def matmul():
    a = torch.randn(4096, 4096, device=DEVICE)
    b = torch.randn(4096, 4096, device=DEVICE)
    ms = timed(lambda: a @ b, repeats=20)
    report("fp32 matmul 4096^2 (TF32 off)", ms=ms, tflops=2 * 4096**3 / (ms / 1000) / 1e12)


def scan():
    batch, length, d_inner, d_state = 16, 1024, 512, 16
    gen = torch.Generator(device=DEVICE).manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, device=DEVICE, generator=gen)

    x = rand(batch, length, d_inner).requires_grad_()
    dt = (F.softplus(rand(batch, length, d_inner)) * 0.1).detach().requires_grad_()
    A = (-torch.rand(d_inner, d_state, device=DEVICE, generator=gen) - 0.5).requires_grad_()
    Bm = rand(batch, length, d_state).requires_grad_()
    Cm = rand(batch, length, d_state).requires_grad_()
    weights = rand(batch, length, d_inner)
    for name, fn in (("hillis-steele", selective_scan_parallel), ("sequential loop", selective_scan_loop)):

        def forward_backward():
            y = fn(x, dt, A, Bm, Cm)
            (y * weights).sum().backward()

        torch.cuda.reset_peak_memory_stats()
        ms = timed(forward_backward, warmup=2, repeats=5)
        report(
            "selective scan fwd+bwd [16, 1024, 512, 16]",
            scan=name,
            ms=ms,
            peakGiB=torch.cuda.max_memory_allocated() / 2**30,
        )


class Residual(nn.Module):
    def __init__(self, d_model, mixer):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=1e-5)
        self.mixer = mixer

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class OneHeadAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        # The math path, not a fused kernel: PyTorch eager as a user writes it without SDPA.
        scores = (q @ k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        length = x.shape[1]
        mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(mask, float("-inf")).softmax(-1)
        return self.out(weights @ v)


class ZoologyModel(nn.Module):
    def __init__(self, mixer, vocab=8192, d_model=64, length=64):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(length, d_model) if mixer == "attention" else None
        layers = 2 if mixer == "attention" else 4
        self.layers = nn.ModuleList(
            Residual(d_model, OneHeadAttention(d_model) if mixer == "attention" else Mamba(d_model, scan="parallel"))
            for _ in range(layers)
        )
        self.norm = nn.RMSNorm(d_model, eps=1e-5)

    def hidden(self, tokens):
        x = self.embed(tokens)
        if self.positions is not None:
            x = x + self.positions.weight[: tokens.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def forward(self, tokens):
        return self.hidden(tokens) @ self.embed.weight.t()


def zoology(mixer, supervised=False):
    torch.manual_seed(0)
    batch, length, vocab, queries = 512, 64, 8192, 4
    model = ZoologyModel(mixer, vocab=vocab, length=length).to(DEVICE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    tokens = torch.randint(0, vocab, (batch, length), device=DEVICE)
    targets = torch.randint(0, vocab, (batch, length), device=DEVICE)
    # MQAR's (64, 4) cell supervises 4 query positions per sequence, in its second half.
    query_positions = length // 2 + torch.rand(batch, length // 2, device=DEVICE).argsort(-1)[:, :queries]
    rows = (torch.arange(batch, device=DEVICE)[:, None] * length + query_positions).reshape(-1).sort().values

    def step():
        optimizer.zero_grad(set_to_none=True)
        if supervised:
            # The head on the supervised rows alone (train.head_rows: supervised in Interleave).
            hidden = model.hidden(tokens).reshape(-1, model.embed.weight.shape[1])[rows]
            loss = F.cross_entropy(hidden @ model.embed.weight.t(), targets.reshape(-1)[rows])
        else:
            # As Zoology's code: logits at every position (the loss ignores the unsupervised ones).
            loss = F.cross_entropy(model(tokens).reshape(-1, vocab), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        loss.item()  # one read-back per step, as Interleave's trainer does

    ms = timed(step, warmup=5, repeats=20)
    head = ", head on the 2,048 supervised rows" if supervised else ""
    report(
        f"zoology {mixer} training step (B512 x 64, d_model 64{head})",
        ms=ms,
        tokensPerSecond=batch * length / (ms / 1000),
        parameters=sum(p.numel() for p in model.parameters()),
    )


def main():
    figures = {
        "tinyop": tiny_op,
        "matmul": matmul,
        "scan": scan,
        "zoology-attention": lambda: zoology("attention"),
        "zoology-mamba": lambda: zoology("mamba"),
        "zoology-attention-supervised": lambda: zoology("attention", supervised=True),
        "zoology-mamba-supervised": lambda: zoology("mamba", supervised=True),
    }
    report("versions", torch=torch.__version__, gpu=torch.cuda.get_device_name(0))
    for name in sys.argv[1:] or list(figures):
        figures[name]()


if __name__ == "__main__":
    main()
