"""A plain PyTorch form of RWKV-7 time mixing, written from the RWKV-7 paper's equations and the
naive recurrence of fla-org/flash-linear-attention (`fla/ops/rwkv7`), token by token in float64,
with the module tree of fla's `RWKV7Attention` at layer 0 (no `v_lora`), so that Interleave's
parameters load with strict=True.

The decay is written in the official RWKV-7 form, w = exp(-exp(-softplus(-(w0 + w_lora)) - 1/2)),
and the state as RWKV-7's S [V, K] with S_t = S_{t-1} (diag(w_t) + a_t b_t^T) + v_t k_t^T,
o_t = S_t r_t: both differ in form from what the TypeScript block computes (its log-decay
-e^{-1/2} sigmoid(.) and its chunked H = S^T), not in value.

usage: reference_rwkv7.py <case.safetensors> <case.json> <result.json>
The case file holds the block's parameters (named as in fla), the input `x` [B, L, D] and
Interleave's output `y`; the JSON gives d_model, heads and the LoRA ranks.
Writes {"max_abs_error", "max_abs_reference", "torch"} after a strict load, and with
"check_reference_init" in the JSON also "init_error": how far the loaded parameters are from fla's
layer-0 initialisation (`reference_init_error`).
"""

import json
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn


class LoRA(nn.Module):
    """fla's LoRA: lora = Sequential(Linear(in, rank, bias=False), activation, Linear(rank, out))."""

    def __init__(self, d_in, d_out, rank, activation, bias=True):
        super().__init__()
        self.lora = nn.Sequential(nn.Linear(d_in, rank, bias=False), activation, nn.Linear(rank, d_out, bias=bias))

    def forward(self, x):
        return self.lora(x)


class RWKV7TimeMix(nn.Module):
    def __init__(self, d_model, heads, decay_rank, a_rank, gate_rank, norm_eps):
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        for name in ('x_r', 'x_w', 'x_k', 'x_v', 'x_a', 'x_g'):
            setattr(self, name, nn.Parameter(torch.zeros(1, 1, d_model)))
        self.k_k = nn.Parameter(torch.zeros(d_model))
        self.k_a = nn.Parameter(torch.zeros(d_model))
        self.r_k = nn.Parameter(torch.zeros(heads, self.head_dim))
        self.r_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)
        self.w_lora = LoRA(d_model, d_model, decay_rank, nn.Tanh())
        self.a_lora = LoRA(d_model, d_model, a_rank, nn.Identity())
        self.g_lora = LoRA(d_model, d_model, gate_rank, nn.Sigmoid(), bias=False)
        self.g_norm = nn.GroupNorm(heads, d_model, eps=self.head_dim * norm_eps, affine=True)

    def forward(self, x):
        batch, length, width = x.shape
        heads, n = self.heads, self.head_dim
        shifted = F.pad(x, (0, 0, 1, -1))  # x_{t-1}, zero before the first token
        xr, xw, xk, xv, xa, xg = (torch.lerp(x, shifted, mix) for mix in
                                  (self.x_r, self.x_w, self.x_k, self.x_v, self.x_a, self.x_g))
        r = self.r_proj(xr)
        w = -F.softplus(-self.w_lora(xw)) - 0.5  # RWKV-7's w; the decay is exp(-exp(w))
        k = self.k_proj(xk)
        v = self.v_proj(xv)
        a = torch.sigmoid(self.a_lora(xa))
        g = self.g_lora(xg)
        kk = F.normalize((k * self.k_k).view(batch, length, heads, n), dim=-1, p=2.0).view(batch, length, width)
        k = k * (1 + (a - 1) * self.k_a)

        per_head = lambda t: t.view(batch, length, heads, n)
        r_, w_, k_, v_, kk_, a_ = map(per_head, (r, w, k, v, kk, a))
        state = torch.zeros(batch, heads, n, n, dtype=x.dtype)  # S [V, K] per head
        outputs = []
        for t in range(length):
            decay = torch.exp(-torch.exp(w_[:, t]))  # [B, H, K]
            removal, replacement = -kk_[:, t], kk_[:, t] * a_[:, t]
            state = (state * decay[:, :, None, :]
                     + torch.einsum('bhik,bhk,bhj->bhij', state, removal, replacement)
                     + torch.einsum('bhi,bhj->bhij', v_[:, t], k_[:, t]))
            outputs.append(torch.einsum('bhij,bhj->bhi', state, r_[:, t]))
        o = torch.stack(outputs, 1).reshape(batch * length, width)
        o = self.g_norm(o).view(batch, length, width)
        bonus = ((r_ * k_ * self.r_k).sum(-1, keepdim=True) * v_).view(batch, length, width)
        return self.o_proj((o + bonus) * g)


def reference_init_error(module, d_model, num_layers=2):
    """Largest difference between the loaded parameters and fla's `_initialize_weights` at
    layer_idx 0 of `num_layers` (the deterministic values; the orthogonal matrices are checked by
    W Wᵀ = gain² I). The GroupNorm weight is left out: ours uses the model's depth, absent here."""
    ratio_0_to_1 = 0 / (num_layers - 1)
    ratio_1_to_almost0 = 1.0 - 0 / num_layers
    n = torch.arange(d_model, dtype=torch.float64)
    ddd = (n / d_model).view(1, 1, -1)
    linear = n / (d_model - 1) - 0.5
    head_dim = module.head_dim
    zigzag = ((n % head_dim) - (head_dim - 1) / 2) / ((head_dim - 1) / 2)
    zigzag = zigzag * zigzag.abs()
    www = -6 + 6 * (n / (d_model - 1)) ** (1 + 1 * ratio_0_to_1 ** 0.3)
    expected = {
        'x_r': 1.0 - ddd ** (0.2 * ratio_1_to_almost0),
        'x_w': 1.0 - ddd ** (0.9 * ratio_1_to_almost0),
        'x_k': 1.0 - ddd ** (0.7 * ratio_1_to_almost0),
        'x_v': 1.0 - ddd ** (0.7 * ratio_1_to_almost0),
        'x_a': 1.0 - ddd ** (0.9 * ratio_1_to_almost0),
        'x_g': 1.0 - ddd ** (0.2 * ratio_1_to_almost0),
        'k_a': torch.full((d_model,), 1.02, dtype=torch.float64),
        'r_k': torch.full(module.r_k.shape, -0.04, dtype=torch.float64),
        'k_k': 0.71 - linear * 0.1,
        'w_lora.lora.2.bias': www + 0.5 + zigzag * 2.5,
        'a_lora.lora.2.bias': -0.19 + zigzag * 0.3 + linear * 0.4,
        'o_proj.weight': torch.zeros(d_model, d_model, dtype=torch.float64),
        'w_lora.lora.0.weight': torch.zeros_like(module.w_lora.lora[0].weight),
        'a_lora.lora.0.weight': torch.zeros_like(module.a_lora.lora[0].weight),
        'g_lora.lora.0.weight': torch.zeros_like(module.g_lora.lora[0].weight),
    }
    state = module.state_dict()
    errors = {name: (state[name] - value).abs().max().item() for name, value in expected.items()}
    eye = torch.eye(d_model, dtype=torch.float64)
    for name, gain in (('r_proj.weight', 1.0), ('k_proj.weight', 0.1), ('v_proj.weight', 1.0)):
        weight = state[name]
        errors[name + ' orthogonality'] = (weight @ weight.T - gain ** 2 * eye).abs().max().item()
    return max(errors.values()), max(errors, key=errors.get)


def main():
    tensors_file, case_file, result_file = sys.argv[1:4]
    case = json.loads(open(case_file).read())
    tensors = {name: t.to(torch.float64) for name, t in load_file(tensors_file).items()}
    x, ours = tensors.pop('x'), tensors.pop('y')
    module = RWKV7TimeMix(case['d_model'], case['heads'], case['decay_rank'], case['a_rank'],
                          case['gate_rank'], case['norm_eps']).to(torch.float64)
    module.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        reference = module(x)
    init_error, worst = reference_init_error(module, case['d_model']) if case.get('check_reference_init') else (None, None)
    result = {
        'init_error': init_error,
        'init_worst': worst,
        'max_abs_error': (reference - ours).abs().max().item(),
        'max_abs_reference': reference.abs().max().item(),
        'torch': torch.__version__,
    }
    open(result_file, 'w').write(json.dumps(result))


if __name__ == '__main__':
    main()
