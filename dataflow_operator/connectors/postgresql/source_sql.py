"""SQL of the PostgreSQL source (pure: psycopg's ``sql`` composition, no connection).

Every poll reads one keyset page::

    SELECT row_to_json(t)::text, t.ct, t.ob [, t.created_at = t.updated_at]
    FROM <table | (user query)> AS t
    WHERE t.ct IS NOT NULL AND t.ob IS NOT NULL [AND (t.ct, t.ob) > ($1, $2)]
      [AND t.ct <= statement_timestamp() - make_interval(secs => $3)]
    ORDER BY t.ct, t.ob LIMIT n

``row_to_json`` renders the row in the server, exactly: numerics keep every digit, ``json``/``jsonb``
columns are embedded as JSON, timestamps are ISO 8601 (with offset for ``timestamptz``), ``bytea``
is its hex text (``"\\x0102"``). Rows whose tracking columns are NULL cannot be positioned and are
never read: those columns should be NOT NULL.

Pages start at the *settled* position: every row at or below it is delivered and final (see
:mod:`.commit_horizon`). Rows above it are read again each poll cycle, so a row whose transaction
stamped it early and committed late is still found; rows delivered before are skipped by the source.

The last condition is ``changeTrackingDelay``, an extra margin for what the horizon cannot see (values
stamped by a client's clock): rows are read only once their change time is at least the delay old
(Kafka Connect's JDBC source calls it ``timestamp.delay.interval.ms``).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from .keyset import Keyset, bind_text

_INSERT_FLAG = sql.SQL("t.created_at = t.updated_at")


@dataclass(frozen=True, slots=True)
class PollQuery:
    """What to read from (a table identifier or a user query) and how it is tracked."""

    source: sql.Composable
    change_column: str
    order_column: str
    insert_flag: bool  # the relation has created_at and updated_at: operation = insert when equal
    delay_seconds: float = 0.0  # changeTrackingDelay

    def page(self, after: Keyset | None, limit: int) -> tuple[sql.Composed, list[str]]:
        """Columns: row JSON, change value, order value[, created_at = updated_at]."""
        ct, ob = sql.Identifier("t", self.change_column), sql.Identifier("t", self.order_column)
        columns = [sql.SQL("row_to_json(t)::text"), ct, ob]
        if self.insert_flag:
            columns.append(_INSERT_FLAG)
        conditions = [sql.SQL("{} IS NOT NULL").format(ct), sql.SQL("{} IS NOT NULL").format(ob)]
        params: list[str] = []
        if after is not None and after.order is not None:
            conditions.append(sql.SQL("({}, {}) > (%s, %s)").format(ct, ob))
            params += [bind_text(after.change), bind_text(after.order)]
        elif after is not None:  # legacy checkpoint with a time only
            conditions.append(sql.SQL("{} > %s").format(ct))
            params.append(bind_text(after.change))
        if self.delay_seconds > 0:
            conditions.append(sql.SQL("{} <= statement_timestamp() - make_interval(secs => %s::float8)").format(ct))
            params.append(repr(float(self.delay_seconds)))
        query = sql.SQL("SELECT {columns} FROM {source} AS t WHERE {conditions} ORDER BY {ct}, {ob} LIMIT {limit}")
        return query.format(columns=sql.SQL(", ").join(columns), source=self.source,
                            conditions=sql.SQL(" AND ").join(conditions), ct=ct, ob=ob,
                            limit=sql.Literal(limit)), params


#: The running transactions of this database (other than the source's own): each holds a lock on its
#: virtual transaction id, visible to every role; its start only to roles that may see the session
#: (NULL otherwise). A session this role may see that shows no transaction ended it between reading
#: the locks and the sessions. Autovacuum workers write no rows. Prepared transactions have no session.
RUNNING_TRANSACTIONS = sql.SQL("""
SELECT statement_timestamp(), 'v' || l.virtualtransaction, a.xact_start
FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'virtualxid' AND l.granted AND l.virtualxid = l.virtualtransaction
  AND l.pid <> pg_backend_pid() AND a.datname = current_database()
  AND a.backend_type IS DISTINCT FROM 'autovacuum worker' AND (a.xact_start IS NOT NULL OR a.state IS NULL)
UNION ALL
SELECT statement_timestamp(), 'p' || p.gid, NULL FROM pg_prepared_xacts AS p WHERE p.database = current_database()
UNION ALL
SELECT statement_timestamp(), NULL, NULL
""")


def user_query(text: str) -> sql.Composable:
    """A user's SELECT as a parenthesised subquery. ``%`` is doubled because the composed statement
    is sent with parameters, where a bare ``%`` would be read as a placeholder."""
    body = text.strip().rstrip(";").strip()
    return sql.SQL("({})").format(sql.SQL(body.replace("%", "%%")))


def probe(source: sql.Composable) -> sql.Composed:
    """Zero rows, full description: the relation's column names."""
    return sql.SQL("SELECT * FROM {} AS t LIMIT 0").format(source)


def verbatim(text: str, order_column: str | None, insert_flag: bool) -> sql.Composed:
    """Query mode without a change-tracking column: the user's query, re-run as is every poll.
    Columns: row JSON, order value (NULL when the query has no such column)[, insert flag]."""
    body = text.strip().rstrip(";").strip()
    columns = [sql.SQL("row_to_json(t)::text"),
               sql.Identifier("t", order_column) if order_column else sql.SQL("NULL")]
    if insert_flag:
        columns.append(_INSERT_FLAG)
    return sql.SQL("SELECT {} FROM ({}) AS t").format(sql.SQL(", ").join(columns), sql.SQL(body))


def create_source_table(table: sql.Identifier) -> sql.Composed:
    """``autoCreateTable`` for the source: the minimal trackable table (connectors.md §2.2)."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (id SERIAL PRIMARY KEY, "
        "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ).format(table)
