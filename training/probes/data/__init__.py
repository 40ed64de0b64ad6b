"""Hand-written probe data (see PROVENANCE.md): read by ``training.probes``, never trained on."""
