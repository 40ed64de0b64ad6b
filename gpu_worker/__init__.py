"""Turns texts into per-category scores: backends, micro-batcher, the shared model per process.

Knows nothing of Celery, HTTP or SQL.
"""
