"""Cantor's models: one GPT class (word model and codebook prior), the VQ-VAE, sampling, training."""
