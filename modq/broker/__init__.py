"""The broker as producers and workers share it: Celery keys, routing, the Redis transport,
queue depths and admission. Imports nothing above ``modq``'s layer 0."""
