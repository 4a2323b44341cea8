"""A plain-PyTorch Mamba language model, the reference our exported checkpoints are checked against.

The mixer is python/interleave_reference/mamba.py, with the parameter names and layouts of
state-spaces/mamba's `Mamba` (mamba_simple.py); the model here has the module tree of its
`MambaLMHeadModel` (`backbone.embedding`, `backbone.layers.{i}.norm`, `backbone.layers.{i}.mixer`, `backbone.norm_f`,
`lm_head` tied to the embedding), so a state_dict that loads here with strict=True has the names
and shapes MambaLMHeadModel.load_state_dict expects. The scan is the sequential recurrence, with
no fused kernels, so it is slow and exact: a reference, not an implementation to train with.

Usage (the test runs it):
  reference_mamba.py --weights W.safetensors --tokens T.safetensors --out R.safetensors
                     [--norm-eps EPS] [--perturb SEED --save-weights P.safetensors]
W is in either layout: MambaLMHeadModel's (`backbone.*`) or Interleave's (the backbone's own
names). It prints a JSON report (layout, inferred config, the state_dict's names and shapes) and
writes R with `logits` (float64) and, with --perturb, `perturbed_logits` of the same model after
adding noise to every weight; the perturbed weights are saved to P in W's layout.
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

# The Mamba mixer is the repository's one PyTorch Mamba, <repo>/python/interleave_reference.
sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "python"))
from interleave_reference.mamba import Mamba  # noqa: E402


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: eps inside the root, as in Interleave and mamba_ssm."""

    def __init__(self, d_model: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    """Pre-norm residual layer: x + mixer(norm(x))."""

    def __init__(self, d_model: int, eps: float, ssm_cfg: dict):
        super().__init__()
        self.norm = RMSNorm(d_model, eps)
        self.mixer = Mamba(d_model, **ssm_cfg)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class MixerModel(nn.Module):
    def __init__(self, d_model: int, n_layer: int, vocab_size: int, eps: float, ssm_cfg: dict):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList([Block(d_model, eps, ssm_cfg) for _ in range(n_layer)])
        self.norm_f = RMSNorm(d_model, eps)

    def forward(self, tokens):
        x = self.embedding(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)


class MambaLMHeadModel(nn.Module):
    def __init__(self, d_model, n_layer, vocab_size, eps, ssm_cfg, tie_embeddings=True):
        super().__init__()
        self.backbone = MixerModel(d_model, n_layer, vocab_size, eps, ssm_cfg)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.backbone.embedding.weight

    def forward(self, tokens):
        return self.lm_head(self.backbone(tokens))


BACKBONE = "backbone."


def infer_config(state: dict, layout: str) -> dict:
    """The model's sizes, read off the shapes of its weights."""
    prefix = BACKBONE if layout == "mamba_ssm" else ""
    vocab_size, d_model = state[prefix + "embedding.weight"].shape
    layers = prefix + "layers."
    n_layer = 1 + max(int(name[len(layers) :].split(".")[0]) for name in state if name.startswith(layers))
    mixer = layers + "0.mixer."
    d_inner, d_state = state[mixer + "A_log"].shape
    head = state.get("lm_head.weight")
    return {
        "d_model": d_model,
        "n_layer": n_layer,
        "vocab_size": vocab_size,
        "ssm_cfg": {
            "d_state": d_state,
            "d_conv": state[mixer + "conv1d.weight"].shape[2],
            "expand": d_inner // d_model,
            "dt_rank": state[mixer + "dt_proj.weight"].shape[1],
        },
        "tie_embeddings": head is None or torch.equal(head, state[prefix + "embedding.weight"]),
    }


def load(model: MambaLMHeadModel, state: dict, layout: str):
    """strict=True: every name of the module must be in the file and every name of the file in the module."""
    if layout == "mamba_ssm":
        model.load_state_dict(state, strict=True)
        return
    # Interleave's names are the backbone's, plus `lm_head.weight` when the head is not tied.
    backbone = {name: tensor for name, tensor in state.items() if name != "lm_head.weight"}
    model.backbone.load_state_dict(backbone, strict=True)
    if "lm_head.weight" in state:
        model.lm_head.load_state_dict({"weight": state["lm_head.weight"]}, strict=True)


def saved_state(model: MambaLMHeadModel, layout: str) -> dict:
    """A state_dict in `layout`, each tensor its own copy: safetensors refuses tensors that share memory."""
    state = model.state_dict()
    if layout == "interleave":
        state = {name.removeprefix(BACKBONE): tensor for name, tensor in state.items()}
        if model.lm_head.weight is model.backbone.embedding.weight:
            del state["lm_head.weight"]
    return {name: tensor.detach().clone().contiguous() for name, tensor in state.items()}


def logits_of(model: MambaLMHeadModel, tokens) -> torch.Tensor:
    with torch.no_grad():
        return copy.deepcopy(model).double()(tokens)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--norm-eps", type=float, help="default: the weights' interleave.model norm_eps, else 1e-5")
    parser.add_argument("--perturb", type=int)
    parser.add_argument("--save-weights")
    args = parser.parse_args()

    state = load_file(args.weights)
    with safe_open(args.weights, framework="pt") as handle:
        metadata = handle.metadata() or {}
    layout = "mamba_ssm" if any(name.startswith(BACKBONE) for name in state) else "interleave"
    config = infer_config(state, layout)
    eps = args.norm_eps
    if eps is None:
        eps = json.loads(metadata.get("interleave.model", "{}")).get("norm_eps", 1e-5)
    model = MambaLMHeadModel(eps=eps, **config)
    load(model, state, layout)
    tokens = load_file(args.tokens)["tokens"].long()
    results = {"logits": logits_of(model, tokens)}

    if args.perturb is not None:
        generator = torch.Generator().manual_seed(args.perturb)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
        save_file(saved_state(model, layout), args.save_weights, metadata={"format": "pt"})
        results["perturbed_logits"] = logits_of(model, tokens)

    save_file({name: tensor.contiguous() for name, tensor in results.items()}, args.out)
    print(
        json.dumps(
            {
                "layout": layout,
                "config": config,
                "format": metadata.get("format"),
                "torch": torch.__version__,
                "state_dict": {name: list(tensor.shape) for name, tensor in saved_state(model, layout).items()},
            }
        )
    )


if __name__ == "__main__":
    main()
