"""Numbers the paper fixes that more than one layer needs (a study's settings and the analysis
of its results), defined once."""

TABLE1_STEPS = (600, 1000, 1400, 2000)  # Table 1's columns: steps since theta_mem
# Table 1's test accuracies (mean over seeds) at TABLE1_STEPS, as the paper prints them
TABLE1_PAPER = {"WD": (0.53, 0.95, 1.00, 1.00), "EP w/o WD": (0.68, 0.80, 0.84, 0.92),
                "EP w/ WD": (0.82, 0.96, 0.99, 1.00)}
