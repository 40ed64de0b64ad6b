"""``python -m bench``: the benchmark suite (see ``bench.suite``)."""

from bench.suite import main

main()
