"""Training: chat SFT of causal LMs on hiwar datasets with Ray Train."""
