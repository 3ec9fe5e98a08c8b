-- The reference of a day's online scores: the batch predictions of the same model version over
-- the trailing days up to it (the population the version scored offline).
SELECT score FROM {predictions_table}
WHERE model_version = $version AND _partition_date BETWEEN $reference_start AND $day
