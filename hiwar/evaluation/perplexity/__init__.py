"""Perplexity, bits per byte and bits per character: text as training formats it (encoding.py), batched windowed NLL
(nll.py) in a Ray Data actor (stage.py), one job per model (job.py), corpus figures from per-conversation NLL
(metrics.py)."""
