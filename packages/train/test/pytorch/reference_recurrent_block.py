"""A plain-PyTorch Griffin/Hawk recurrent block, with the module tree of recurrentgemma's.

Written from the equations of the RG-LRU (De et al. 2024, "Griffin") and the parameter tree of
google-deepmind/recurrentgemma's PyTorch `RecurrentBlock` (recurrentgemma/torch/modules.py and
layers.py: `linear_y`, `linear_x`, `linear_out` as nn.Linear; `conv_1d` with `w` [K, width] and
`b`; `rg_lru` with `a_param` and the block-diagonal `input_gate` and `a_gate`, each `w` [heads,
in, out] and `b` [heads, width / heads]). A state_dict that loads here with strict=True has the
names and shapes RecurrentBlock.load_state_dict expects.

  out = linear_out(gelu(linear_y(x)) * rg_lru(conv_1d(linear_x(x))))
  rg_lru: r_t = sigmoid(a_gate(x_t)), i_t = sigmoid(input_gate(x_t)),
          log a_t = -8 r_t softplus(a_param),
          h_t = a_t h_{t-1} + sqrt(1 - a_t^2) (i_t x_t), except h_0 = i_0 x_0 (a segment start)

recurrentgemma's gelu is the tanh approximation; Interleave's is exact (erf). --gelu picks which,
so that the layout can be checked to float32 precision with the exact one and the size of the
approximation's difference reported with the other.

Usage (the test runs it):
  reference_recurrent_block.py --weights W.safetensors --prefix blocks.0.recurrent_block.
                               --inputs X.safetensors --out R.safetensors [--gelu exact|tanh]
W holds the block under `prefix` (the rest is ignored); X holds `x` [batch, length, width]. It
prints a JSON report (the state_dict's names and shapes) and writes R with `y` (float64).
"""

import argparse
import json

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn


class Conv1D(nn.Module):
    """Causal depthwise convolution over time; w[K - 1] multiplies the current input."""

    def __init__(self, width: int, temporal_width: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(temporal_width, width))
        self.b = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        length = x.shape[1]
        taps = self.w.shape[0]
        out = self.b.expand_as(x).clone()
        for shift in range(taps):
            # The input `shift` steps back, zero before the start.
            delayed = F.pad(x, (0, 0, shift, 0))[:, :length]
            out = out + delayed * self.w[taps - 1 - shift]
        return out


class BlockDiagonalLinear(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        block = width // heads
        self.w = nn.Parameter(torch.zeros(heads, block, block))
        self.b = nn.Parameter(torch.zeros(heads, block))

    def forward(self, x):
        blocks = x.reshape(*x.shape[:-1], self.heads, -1)
        y = torch.einsum("...hi,hij->...hj", blocks, self.w) + self.b
        return y.reshape(*x.shape)


class RGLRU(nn.Module):
    def __init__(self, width: int, heads: int, c: float = 8.0):
        super().__init__()
        self.c = c
        self.a_param = nn.Parameter(torch.zeros(width))
        self.input_gate = BlockDiagonalLinear(width, heads)
        self.a_gate = BlockDiagonalLinear(width, heads)

    def forward(self, x):
        gate_x = torch.sigmoid(self.input_gate(x))
        gate_a = torch.sigmoid(self.a_gate(x))
        log_a = -self.c * gate_a * F.softplus(self.a_param)
        a = torch.exp(log_a)
        multiplier = torch.sqrt(1 - torch.exp(2 * log_a))
        multiplier[:, 0] = 1.0  # the first position starts a segment
        drive = x * gate_x * multiplier
        h = torch.zeros_like(x[:, 0])
        outputs = []
        for t in range(x.shape[1]):
            h = a[:, t] * h + drive[:, t]
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class RecurrentBlock(nn.Module):
    def __init__(self, width: int, lru_width: int, heads: int, temporal_width: int, gelu: str):
        super().__init__()
        self.gelu = "tanh" if gelu == "tanh" else "none"
        self.linear_y = nn.Linear(width, lru_width)
        self.linear_x = nn.Linear(width, lru_width)
        self.linear_out = nn.Linear(lru_width, width)
        self.conv_1d = Conv1D(lru_width, temporal_width)
        self.rg_lru = RGLRU(lru_width, heads)

    def forward(self, x):
        y = F.gelu(self.linear_y(x), approximate=self.gelu)
        recurrent = self.rg_lru(self.conv_1d(self.linear_x(x)))
        return self.linear_out(recurrent * y)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--gelu", choices=["exact", "tanh"], default="exact")
    args = parser.parse_args()

    weights = load_file(args.weights)
    state = {name[len(args.prefix):]: value.double() for name, value in weights.items() if name.startswith(args.prefix)}
    width = state["linear_y.weight"].shape[1]
    lru_width = state["linear_y.weight"].shape[0]
    heads = state["rg_lru.a_gate.w"].shape[0]
    temporal_width = state["conv_1d.w"].shape[0]
    block = RecurrentBlock(width, lru_width, heads, temporal_width, args.gelu).double()
    block.load_state_dict(state, strict=True)

    x = load_file(args.inputs)["x"].double()
    with torch.no_grad():
        y = block(x)
    save_file({"y": y.contiguous()}, args.out)
    report = {
        "torch": torch.__version__,
        "state_dict": {name: list(value.shape) for name, value in block.state_dict().items()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
