"""Numbers the paper fixes that more than one layer needs (a study's settings and the analysis
of its results), defined once."""

TABLE1_STEPS = (600, 1000, 1400, 2000)  # Table 1's columns: steps since theta_mem
