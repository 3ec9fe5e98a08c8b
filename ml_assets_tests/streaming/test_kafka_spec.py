"""`source.kafka` in the dataset spec: what it accepts, and each refusal naming its field."""

import pytest

from ml_assets.core.spec import SpecError, parse_spec
from ml_assets_tests.streaming.test_stream_sensor import spec_mapping


def with_source(**changes) -> dict:
    spec = spec_mapping("127.0.0.1:9092")
    for path, value in changes.items():
        node = spec
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(leaf)
        else:
            node[leaf] = value
    return spec


def test_a_kafka_source_parses_with_its_defaults() -> None:
    spec = parse_spec(with_source(source__kafka__max_seconds=None), None)
    kafka = spec.source.kafka
    assert (kafka.topic, kafka.group, kafka.format, kafka.key) == (
        "events",
        "ml_assets_events",
        "json",
        "id",
    )
    assert (kafka.max_messages, kafka.max_seconds, kafka.interval_seconds) == (40, 5.0, 5)
    assert spec.source.files == [] and spec.kafka_event_time_field == "ts"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source__files": ["a.csv"]}, "field 'source': Value error, kafka: a source is either"),
        ({"source__kafka": None}, "files: give at least one path or glob, or a 'kafka' topic"),
        ({"source__kafka__key": "nope"}, "field 'source.kafka.key': 'nope' is not a contract"),
        ({"source__kafka__format": "avro"}, "field 'source.kafka.format'"),
        ({"source__kafka__max_seconds": 0}, "field 'source.kafka.max_seconds'"),
        ({"source__kafka__topic": None}, "field 'source.kafka.topic': Field required"),
        (
            {"event_time": {"expression": "CAST(ts AS TIMESTAMP)"}},
            "field 'source.kafka.event_time_field': required when event_time is an expression",
        ),
        (
            {"lookups": {"w": {"kafka": {"bootstrap_servers": "b", "topic": "t", "group": "g"}}}},
            "field 'lookups.w.kafka': a lookup is read from files",
        ),
    ],
)
def test_a_bad_kafka_source_is_refused_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(with_source(**changes), None)
    assert message in str(err.value)


def test_an_expression_event_time_reads_the_named_field() -> None:
    spec = parse_spec(
        with_source(
            event_time={"expression": "CAST(ts AS TIMESTAMP)"},
            source__kafka__event_time_field="sched_at",
        ),
        None,
    )
    assert spec.kafka_event_time_field == "sched_at"
