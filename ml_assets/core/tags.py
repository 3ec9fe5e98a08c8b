"""Run tags the project reads and writes: why a run happened and which days it covers.

The retrain sensor writes the trigger tags; training, the audit row and MLflow read them, so the
reason for a retrain travels with the run. The range tags are Dagster's own, for single-run
backfills over a range of daily partitions.
"""

TRIGGER_TAG = "ml_assets/trigger"
TRIGGER_CHECK_TAG = "ml_assets/trigger_check"
TRIGGER_PARTITION_TAG = "ml_assets/trigger_partition"
AS_OF_TAG = "ml_assets/as_of"
LANDING_FILE_TAG = "ml_assets/landing_file"
SOURCE_CHECKSUM_TAG = "ml_assets/source_checksum"
# Set by `make run`'s replay, whose trainings are steps of a plan that a rerun after a kill
# redoes: such a training finds the model version it registered before the kill (same training
# set, same code) instead of registering it again. A training launched any other way registers
# a new version, as an MLflow user expects of a retrain.
REUSE_REGISTERED_TAG = "ml_assets/reuse_registered"

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

MANUAL = "manual"


def trigger_of(tags: dict[str, str]) -> str:
    """Why a run happened: the retrain sensor's trigger, or `manual` (UI, CLI)."""
    return tags.get(TRIGGER_TAG, MANUAL)
