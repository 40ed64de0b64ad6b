"""``python -m bench.faults`` (``make faults``): every fault scenario against real processes.

    python -m bench.faults [--quick] [--only NAME[,NAME]] [--markdown]

Runs each scenario module of this package in turn (in its own scratch folder), prints one table
(sent / stored / lost / duplicated / caller errors per scenario), writes
``bench/results/faults.json`` and, with ``--markdown``, the table in ``docs/reliability.md``
between its markers. ``--quick`` is the subset CI runs.
"""

from bench.faults.runner import main

main()
