"""The online request log: what the service predicted, appended to files, ingested per day."""
