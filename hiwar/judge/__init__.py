"""LLM-as-judge on the human-evaluation rubric: one score and a short rationale per criterion, at scale.

The judge scores conversations (a data filter inside ``hiwar generate``), model replies (a metric inside
``hiwar evaluate``, pointwise and pairwise) and the blind items of a human-eval export (calibration against the
raters in ``hiwar human-eval analyze --judge``). Every judgment goes through hiwar's engines
(:func:`hiwar.generation.engines.generate_texts`) on Ray Data. See docs/judge.md.

One stage per module: ``rubric`` and ``prompt`` (what the judge is asked), ``parse`` and ``parse_stage`` (what
counts as a judgment), ``job`` (rounds of retries over resumable shards), ``items`` (what is judged),
``summary`` and ``pairwise`` (the numbers), ``filter``, ``metric`` and ``calibration`` (the three uses).
"""
