"""Mamba's selective SSM mixer (Gu & Dao 2023) in plain PyTorch, with state-spaces/mamba's
parameter names and layouts (mamba_simple.Mamba with its default bias settings), so a
state_dict of Interleave's Mamba block loads into it with strict=True. No fused kernels: the
equations and the initialisation are those of Interleave's `mamba` block (see docs/design.md
and packages/blocks/src/mamba.ts).

The selective scan is a sequential loop over time, as state-spaces/mamba's
`selective_scan_ref`, with everything that does not depend on h_{t-1} computed for all t at
once: Mamba-1's decay is per (channel, state) pair, so the chunked form used for Mamba-2
(scalar decay per head) would have to materialise [chunk, chunk, d_inner, d_state] blocks, and
the log-space cumsum form overflows float32 (exp(-Σ Δ·A) reaches e^100 within a chunk of 64).
A Hillis–Steele parallel scan (`scan="parallel"`) is there for comparison: on a CPU it does
log2(L) times the work.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def selective_scan_loop(x, dt, A, Bm, Cm):
    """h_t = exp(dt_t A) h_{t-1} + (dt_t x_t) B_t,  y_t = h_t . C_t, looping over t.
    x, dt [B, L, Di]; A [Di, N]; Bm, Cm [B, L, N] -> y [B, L, Di]."""
    batch, _, d_inner = x.shape
    decay = torch.exp(dt.unsqueeze(-1) * A)  # [B, L, Di, N]
    drive = (dt * x).unsqueeze(-1) * Bm.unsqueeze(2)  # [B, L, Di, N]
    h = x.new_zeros(batch, d_inner, A.shape[1])
    states = []
    # unbind, not decay[:, t]: autograd then gathers the L slice gradients into one tensor,
    # where indexing would add a full [B, L, Di, N] zero gradient per step (quadratic).
    for decay_t, drive_t in zip(decay.unbind(1), drive.unbind(1)):
        h = decay_t * h + drive_t
        states.append(h)
    return torch.einsum("bldn,bln->bld", torch.stack(states, dim=1), Cm)


def selective_scan_parallel(x, dt, A, Bm, Cm):
    """The same recurrence as a Hillis-Steele scan: log2(L) rounds of whole-tensor ops."""
    a = torch.exp(dt.unsqueeze(-1) * A)
    b = (dt * x).unsqueeze(-1) * Bm.unsqueeze(2)
    offset = 1
    length = x.shape[1]
    while offset < length:
        b = torch.cat([b[:, :offset], a[:, offset:] * b[:, :-offset] + b[:, offset:]], dim=1)
        if offset * 2 < length:
            a = torch.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], dim=1)
        offset *= 2
    return torch.einsum("bldn,bln->bld", b, Cm)


SCANS = {"loop": selective_scan_loop, "parallel": selective_scan_parallel}


class Mamba(nn.Module):
    """The selective SSM mixer: [B, L, d_model] -> [B, L, d_model], causal.

    The defaults are those of Interleave's `mamba` block. dt_proj's bias is initialised so that
    softplus(bias) = dt with dt ~ exp(U(log dt_min, log dt_max)), floored at dt_init_floor, and
    A_log to log(1..d_state) per channel (S4D-real); loading a checkpoint overwrites both.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank="auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        scan: str = "loop",
    ):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.scan = SCANS[scan]
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        with torch.no_grad():
            std = self.dt_rank**-0.5
            self.dt_proj.weight.uniform_(-std, std)
            dt = torch.exp(torch.empty(self.d_inner).uniform_(math.log(dt_min), math.log(dt_max)))
            dt = dt.clamp(min=dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, u):
        length = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)
        # Causal depthwise conv: pad both sides by d_conv - 1, keep the first L outputs.
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :length].transpose(1, 2))
        dt, Bm, Cm = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log)
        y = self.scan(x, dt, A, Bm, Cm) + x * self.D
        return self.out_proj(y * F.silu(z))
