"""Plain PyTorch forms of the chunked mixers, written from the papers' equations (token-by-token
recurrences in float64), with the module trees of their reference implementations so that
Interleave's parameters load with strict=True:

  mamba2          state-spaces/mamba   Mamba2Simple        (Dao & Gu 2024)
  gla             fla-org/flash-linear-attention  GatedLinearAttention  (Yang et al. 2024)
  deltanet        fla-org/flash-linear-attention  DeltaNet
  gated_deltanet  fla-org/flash-linear-attention  GatedDeltaNet   (Yang, Kautz & Hatamizadeh 2025)

usage: reference_mixers.py <case.safetensors> <case.json> <result.json>
The case file holds the block's parameters (named as in the reference module), the input `x`
[B, L, D] and Interleave's output `y`; the JSON says which block, its resolved sizes and options.
Writes {"max_abs_error", "max_abs_reference", "torch"} after a strict load.
"""

import json
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn


def causal_depthwise_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """nn.Conv1d(C, C, K, groups=C, padding=K-1) over time, truncated to the first L outputs."""
    length = x.shape[1]
    return conv(x.transpose(1, 2))[..., :length].transpose(1, 2)


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + 1e-6)


class RMSNormWeight(nn.Module):
    """Holds `weight` as the references' (gated) RMSNorm modules do."""

    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))


class Mamba2(nn.Module):
    def __init__(self, d_model, d_state, d_conv, expand, headdim, ngroups):
        super().__init__()
        self.d_inner = expand * d_model
        self.nheads = self.d_inner // headdim
        self.headdim, self.d_state, self.ngroups = headdim, d_state, ngroups
        conv_dim = self.d_inner + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * ngroups * d_state + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=True)
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.A_log = nn.Parameter(torch.zeros(self.nheads))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNormWeight(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, u):
        batch, length, _ = u.shape
        gn = self.ngroups * self.d_state
        z, xbc, dt = torch.split(self.in_proj(u), [self.d_inner, self.d_inner + 2 * gn, self.nheads], dim=-1)
        dt = F.softplus(dt + self.dt_bias)
        xbc = F.silu(causal_depthwise_conv(self.conv1d, xbc))
        x, b, c = torch.split(xbc, [self.d_inner, gn, gn], dim=-1)
        x = x.reshape(batch, length, self.nheads, self.headdim)
        b = b.reshape(batch, length, self.ngroups, self.d_state)
        c = c.reshape(batch, length, self.ngroups, self.d_state)
        a = -torch.exp(self.A_log)
        per_group = self.nheads // self.ngroups
        h = u.new_zeros(batch, self.nheads, self.headdim, self.d_state)  # [P, N] per head
        ys = []
        for t in range(length):
            heads = []
            for head in range(self.nheads):
                g = head // per_group
                decay = torch.exp(dt[:, t, head] * a[head])[:, None, None]
                drive = (dt[:, t, head, None] * x[:, t, head])[:, :, None] * b[:, t, g][:, None, :]
                h_new = decay * h[:, head] + drive
                heads.append(h_new)
            h = torch.stack(heads, 1)
            ys.append(torch.einsum('bhpn,bhn->bhp', h, c[:, t].repeat_interleave(per_group, dim=1)))
        y = torch.stack(ys, 1) + x * self.D[:, None]
        y = y.reshape(batch, length, self.d_inner)
        y = rms_norm(y * F.silu(z), 1e-5) * self.norm.weight
        return self.out_proj(y)


class GLA(nn.Module):
    def __init__(self, d_model, heads, key_dim, value_dim, rank, normalizer, eps):
        super().__init__()
        self.heads, self.normalizer, self.eps = heads, normalizer, eps
        self.dk, self.dv = key_dim // heads, value_dim // heads
        self.q_proj = nn.Linear(d_model, key_dim, bias=False)
        self.k_proj = nn.Linear(d_model, key_dim, bias=False)
        self.v_proj = nn.Linear(d_model, value_dim, bias=False)
        self.g_proj = nn.Linear(d_model, value_dim, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(d_model, rank, bias=False), nn.Linear(rank, key_dim, bias=True))
        self.o_proj = nn.Linear(value_dim, d_model, bias=False)
        self.g_norm_swish_gate = RMSNormWeight(self.dv)

    def forward(self, x):
        batch, length, _ = x.shape
        split = lambda t, d: t.reshape(batch, length, self.heads, d)  # noqa: E731
        q = split(self.q_proj(x), self.dk) * self.dk**-0.5
        k, v = split(self.k_proj(x), self.dk), split(self.v_proj(x), self.dv)
        log_alpha = split(F.logsigmoid(self.gk_proj(x)) / self.normalizer, self.dk)
        state = x.new_zeros(batch, self.heads, self.dk, self.dv)
        outs = []
        for t in range(length):
            state = torch.exp(log_alpha[:, t])[..., None] * state + k[:, t, :, :, None] * v[:, t, :, None, :]
            outs.append(torch.einsum('bhk,bhkv->bhv', q[:, t], state))
        o = torch.stack(outs, 1)
        g = split(self.g_proj(x), self.dv)
        o = rms_norm(o, self.eps) * self.g_norm_swish_gate.weight * F.silu(g)
        return self.o_proj(o.reshape(batch, length, -1))


class DeltaRule(nn.Module):
    """DeltaNet; with `gated`, GatedDeltaNet (a_proj, A_log, dt_bias)."""

    def __init__(self, d_model, heads, dk, dv, use_beta, use_gate, use_short_conv, conv_size, conv_bias,
                 allow_neg_eigval, eps, gated):
        super().__init__()
        self.heads, self.dk, self.dv, self.eps = heads, dk, dv, eps
        self.use_beta, self.use_gate, self.use_short_conv = use_beta, use_gate, use_short_conv
        self.allow_neg_eigval, self.gated = allow_neg_eigval, gated
        key_dim, value_dim = heads * dk, heads * dv
        self.q_proj = nn.Linear(d_model, key_dim, bias=False)
        self.k_proj = nn.Linear(d_model, key_dim, bias=False)
        self.v_proj = nn.Linear(d_model, value_dim, bias=False)
        if gated:
            self.a_proj = nn.Linear(d_model, heads, bias=False)
            self.A_log = nn.Parameter(torch.zeros(heads))
            self.dt_bias = nn.Parameter(torch.zeros(heads))
        if use_beta:
            self.b_proj = nn.Linear(d_model, heads, bias=False)
        if use_short_conv:
            conv = lambda width: nn.Conv1d(width, width, conv_size, groups=width, padding=conv_size - 1, bias=conv_bias)  # noqa: E731
            self.q_conv1d, self.k_conv1d, self.v_conv1d = conv(key_dim), conv(key_dim), conv(value_dim)
        if use_gate:
            self.g_proj = nn.Linear(d_model, value_dim, bias=False)
        self.o_norm = RMSNormWeight(dv)
        self.o_proj = nn.Linear(value_dim, d_model, bias=False)

    def forward(self, x):
        batch, length, _ = x.shape
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.use_short_conv:
            q = causal_depthwise_conv(self.q_conv1d, q)
            k = causal_depthwise_conv(self.k_conv1d, k)
            v = causal_depthwise_conv(self.v_conv1d, v)
        q, k, v = F.silu(q), F.silu(k), F.silu(v)
        split = lambda t, d: t.reshape(batch, length, self.heads, d)  # noqa: E731
        q = l2_normalize(split(q, self.dk)) * self.dk**-0.5
        k = l2_normalize(split(k, self.dk))
        v = split(v, self.dv)
        beta = torch.sigmoid(self.b_proj(x)) if self.use_beta else x.new_ones(batch, length, self.heads)
        if self.allow_neg_eigval:
            beta = beta * 2
        if self.gated:
            log_alpha = -torch.exp(self.A_log) * F.softplus(self.a_proj(x) + self.dt_bias)
        else:
            log_alpha = x.new_zeros(batch, length, self.heads)
        state = x.new_zeros(batch, self.heads, self.dk, self.dv)
        eye = torch.eye(self.dk, dtype=x.dtype)
        outs = []
        for t in range(length):
            kt = k[:, t]
            # S_t = α (I − β k kᵀ) S_{t−1} + β k vᵀ, written as the paper writes it.
            erase = eye - beta[:, t, :, None, None] * kt[..., :, None] * kt[..., None, :]
            state = torch.exp(log_alpha[:, t])[..., None, None] * (erase @ state)
            state = state + beta[:, t, :, None, None] * kt[..., :, None] * v[:, t, :, None, :]
            outs.append(torch.einsum('bhk,bhkv->bhv', q[:, t], state))
        o = rms_norm(torch.stack(outs, 1), self.eps) * self.o_norm.weight
        if self.use_gate:
            o = o * F.silu(split(self.g_proj(x), self.dv))
        return self.o_proj(o.reshape(batch, length, -1))


def build(case):
    d, o = case['d_model'], case['options']
    block = case['block']
    if block == 'mamba2':
        return Mamba2(d, o['d_state'], o['d_conv'], o['expand'], o['headdim'], o['ngroups'])
    if block == 'gla':
        return GLA(d, o['heads'], o['key_dim'], o['value_dim'], o['gate_low_rank_dim'], o['gate_logit_normalizer'],
                   o['norm_eps'])
    if block in ('deltanet', 'gated_deltanet'):
        return DeltaRule(d, o['heads'], o['head_k_dim'], o['head_v_dim'], o['use_beta'], o['use_gate'],
                         o['use_short_conv'], o['conv_size'], o['conv_bias'], o['allow_neg_eigval'], o['norm_eps'],
                         gated=block == 'gated_deltanet')
    raise SystemExit(f'unknown block {block}')


def main():
    tensors_file, case_file, result_file = sys.argv[1:4]
    with open(case_file) as f:
        case = json.load(f)
    tensors = {name: t.double() for name, t in load_file(tensors_file).items()}
    x, ours = tensors.pop('x'), tensors.pop('y')
    module = build(case).double()
    module.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        reference = module(x)
    result = {
        'max_abs_error': (reference - ours).abs().max().item(),
        'max_abs_reference': reference.abs().max().item(),
        'torch': torch.__version__,
    }
    with open(result_file, 'w') as f:
        json.dump(result, f)


if __name__ == '__main__':
    main()
