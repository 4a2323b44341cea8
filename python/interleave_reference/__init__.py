"""Interleave's blocks in plain PyTorch, shared by the scripts that check our weights against
PyTorch (packages/train/test/pytorch/) and the benchmark's PyTorch peer (bench/peer/)."""
