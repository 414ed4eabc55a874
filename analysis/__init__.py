"""Results as tables and figures (pandas, parquet, matplotlib); never starts Ray."""
