-- A timestamp column as read (text): how many values end in a UTC offset (`Z`, `+02:00`,
-- `-0500`), which offsets occur, and how many values carry a time of day other than midnight.
SELECT count({column}) AS non_null,
       count(*) FILTER (WHERE regexp_matches(trim({column}), $offset_pattern)) AS with_offset,
       coalesce(
           list(DISTINCT regexp_extract(trim({column}), $offset_pattern))
               FILTER (WHERE regexp_matches(trim({column}), $offset_pattern)),
           []
       ) AS offsets
FROM _source
