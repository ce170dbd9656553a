"""Compressing a trained model: quantization-aware training, channel pruning, weight clustering."""
