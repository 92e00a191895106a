"""Networks used by the learned priors (denoisers, unfolded layers, ICNN, diffusion UNet)."""
