"""The ``modq`` command line."""
