"""Probe sets on content the model was not built around (issue 21): long texts, disguised
abuse, appended noise, identity mentions, hate without profanity, other languages, e-mail and
the insults test rows. Written independently of the normaliser and augmenter, so they can fail.
"""

from training.probes.runner import build_sets, run_probes

__all__ = ["build_sets", "run_probes"]
