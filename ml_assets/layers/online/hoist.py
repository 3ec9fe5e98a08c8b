"""Hoist the lookup-only CTEs out of a hand-written feature query, computed once per snapshot.

A feature SQL file often prepares a lookup before joining it to the rows (flights: the hourly
weather deduplicated with a window function over the whole table). Offline that runs once per
partition; online it would run again for every request, and it was most of a request's time.
A CTE whose body reads neither the request's rows nor a parameter nor another CTE that does is
the same for every request: it becomes a table of the snapshot's private DuckDB, created once,
and the per-request query keeps only the CTEs that read the rows. A query this parser does not
understand is left as it is (slower, never different): the parity check compares either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMENT = re.compile(r"--[^\n]*")
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Hoisted:
    tables: dict[str, str]  # CTE name -> its SELECT, to create once
    query: str  # the per-request query, without those CTEs


def _closing(sql: str, start: int) -> int:
    """Index of the parenthesis closing the one opened just before `start`."""
    depth, i, quote = 1, start, None
    while i < len(sql):
        c = sql[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced parentheses")


def _ctes(sql: str) -> tuple[list[tuple[str, str]], str] | None:
    text = _COMMENT.sub("", sql).strip()
    if text[:4].upper() != "WITH" or not text[4:5].isspace():
        return None
    pos, out = 4, []
    while True:
        found = _NAME.match(text, pos)
        if not found:
            return None
        end = _closing(text, found.end())
        out.append((found.group(1), text[found.end() : end]))
        rest = text[end + 1 :]
        stripped = rest.lstrip()
        if stripped.startswith(","):
            pos = end + 1 + (len(rest) - len(stripped)) + 1
            continue
        return out, stripped


def hoist(sql: str, rows_table: str) -> Hoisted:
    """Split `sql` into once-per-snapshot tables and the per-request rest."""
    try:
        parsed = _ctes(sql)
    except ValueError:
        parsed = None
    if parsed is None:
        return Hoisted({}, sql)
    ctes, main = parsed
    tables: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for name, body in ctes:
        reads_rows = rows_table in body or "$" in body
        reads_kept = any(re.search(rf"\b{re.escape(k)}\b", body) for k, _ in kept)
        if reads_rows or reads_kept:
            kept.append((name, body))
        else:
            tables[name] = body
    if not tables:
        return Hoisted({}, sql)
    with_clause = ",\n".join(f"{name} AS ({body})" for name, body in kept)
    query = f"WITH {with_clause}\n{main}" if kept else main
    return Hoisted(tables, query)
