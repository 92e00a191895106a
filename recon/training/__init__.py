"""Training loops for recon's learned priors, one module per prior family, and the datasets they read."""
