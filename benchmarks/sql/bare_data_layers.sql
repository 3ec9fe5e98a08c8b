-- The bare script's three layers of a date-partitioned CSV (figure many_small_partitions): every
-- source row as text (raw), rows meeting the contract typed (validated), the others with the
-- rules they break (quarantine). Partition bounds are bound ($start, $end), never pasted.
CREATE TABLE raw AS
SELECT *
FROM (
    SELECT *, row_number() OVER () AS _row, TRY_CAST(trim({event_time}) AS DATE) AS _partition_date
    FROM read_csv($path, all_varchar = true, header = {header}, delim = {delim}, nullstr = [{nulls}])
)
WHERE _partition_date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE);

CREATE TEMP TABLE flagged AS
WITH typed AS (SELECT *, {typed} FROM raw)
SELECT *, list_filter([
        {reasons}
    ], lambda x: x IS NOT NULL) AS _reasons
FROM typed;

CREATE TABLE validated AS
SELECT {typed_as}, _partition_date FROM flagged WHERE len(_reasons) = 0;

CREATE TABLE quarantine AS
SELECT {raw_columns}, _partition_date, _reasons FROM flagged WHERE len(_reasons) > 0;
