"""Evaluation: perplexity, bits per byte and RAVEN as Ray batch jobs, and the cross-model report."""
