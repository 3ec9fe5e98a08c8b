-- The train split's labels per ISO weekday (1 = Monday) of the event time: what the naive
-- baselines are fitted on (evaluate/baseline.py). Only train rows: the model saw no others.
SELECT isodow(_event_time) AS weekday, count(*) AS rows, avg(_label) AS label_mean
FROM {training_set}
WHERE _split = 'train'
GROUP BY ALL
ORDER BY weekday
