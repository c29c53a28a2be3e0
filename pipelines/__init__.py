"""onetrack: the Dagster code location, its resources, CLI and sample-data generator."""
