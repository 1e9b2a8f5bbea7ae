"""Benchmarks: each op of minitorchseg timed beside PyTorch's in the same run (see README.md)."""
