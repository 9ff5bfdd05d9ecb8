"""What is done with many runs: sweeps, their statistics and tables, confusion matrices, data figures."""
