"""Weights shipped with recon: ``NAME.safetensors`` plus ``NAME.json`` (the card: data, command, steps, scores)."""
