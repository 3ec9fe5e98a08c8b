"""ml_assets: a Dagster asset graph for ML lineage."""
