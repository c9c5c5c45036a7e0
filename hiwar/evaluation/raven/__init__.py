"""RAVEN: replies through hiwar's generation engines, embedded by a sentence encoder (encoder.py) in a Ray Data actor
(stage.py), one job per model (job.py), scored and bootstrapped (score.py); tiny_encoder.py for tests and the demo."""
