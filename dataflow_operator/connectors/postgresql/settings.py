"""The typed PostgreSQL connector configs (connectors.md §2.2): parsed and checked once, with field
paths. Free of psycopg, so that ``validate`` and the operator can use them without libpq."""

from __future__ import annotations

from dataclasses import dataclass

from ...pipeline.api_fields import allowed_keys, api_field, build
from ...pipeline.config_fields import Fields

UPSERT_STRATEGIES = ("always", "ifNewer")
#: Rows per query when readBatchSize is 0.
DEFAULT_PAGE_SIZE = 1000
#: The tracking column of a table read when none is named.
DEFAULT_TRACKING_COLUMN = "updated_at"


def _text(f: Fields, key: str) -> str | None:
    value = f.config.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class PostgreSQLSourceConfig:
    connection_string: str = api_field("libpq connection string or URI.", secret_ref=True)
    table: str = api_field("Table to read; with query, names the read in the checkpoint.", secret_ref=True)
    query: str | None = api_field("SELECT to poll instead of the whole table.", default=None)
    poll_interval: int = api_field("Seconds between polls.", default=5, minimum=1)
    read_batch_size: int = api_field(f"Rows per query; 0 means pages of {DEFAULT_PAGE_SIZE}.", default=0, minimum=0)
    change_tracking_column: str | None = api_field(
        f"Column whose growth marks new or changed rows ({DEFAULT_TRACKING_COLUMN} when unset; with query and "
        "unset, the query is re-run as it is).", default=None)
    order_by_column: str = api_field("Tie-breaker column, unique per row.", default="id")
    change_tracking_delay: float = api_field("Seconds a row must have aged before it is read (lets slow "
                                             "transactions commit).", default=0.0, minimum=0)
    auto_create_table: bool = api_field("Create the table (id, created_at, updated_at) when it does not exist.",
                                        default=False)

    @property
    def tracked(self) -> bool:
        """Query mode without an explicit change-tracking column re-runs the query verbatim (REF)."""
        return self.query is None or self.change_tracking_column is not None

    @property
    def tracking_column(self) -> str:
        return self.change_tracking_column or DEFAULT_TRACKING_COLUMN

    @property
    def page_size(self) -> int:
        return self.read_batch_size or DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, f: Fields) -> PostgreSQLSourceConfig:
        f.unknown_keys(allowed_keys(cls))
        f.value_or_secret("connectionString")
        query = None
        if f.has("query"):
            query = f.string("query", non_empty=True)
            if not f.secret_ref("table"):
                f.string("table", non_empty=True)
        else:
            f.value_or_secret("table")
        poll_interval = f.integer("pollInterval", minimum=1)
        read_batch_size = f.integer("readBatchSize", minimum=0)
        change_tracking_column = f.string("changeTrackingColumn", non_empty=True)
        order_by_column = f.string("orderByColumn", non_empty=True)
        delay = f.number("changeTrackingDelay", minimum=0)
        if delay and f.has("query") and not f.has("changeTrackingColumn"):
            f.error("changeTrackingDelay", "applies only to tracked reads: a query needs changeTrackingColumn too")
        return build(cls, connection_string=_text(f, "connectionString") or "", table=_text(f, "table") or "",
                     query=query, poll_interval=poll_interval, read_batch_size=read_batch_size,
                     change_tracking_column=change_tracking_column, order_by_column=order_by_column,
                     change_tracking_delay=delay, auto_create_table=f.boolean("autoCreateTable"))


@dataclass(frozen=True, slots=True)
class PostgreSQLSinkConfig:
    connection_string: str = api_field("libpq connection string or URI.", secret_ref=True)
    table: str = api_field("Table to write (schema.table allowed).", secret_ref=True)
    batch_size: int = api_field("Rows per transaction; 0 flushes on the timer only.", default=1, minimum=0)
    batch_flush_interval_seconds: int = api_field("Longest wait before a partial batch is written; 0: never "
                                                  "on a timer.", default=10, minimum=0)
    auto_create_table: bool = api_field("Create the table when it does not exist.", default=False)
    raw_mode: bool = api_field("Store each message in a data JSONB column (with _metadata) instead of a column "
                               "per field.", default=False)
    upsert_mode: bool = api_field("INSERT … ON CONFLICT DO UPDATE instead of DO NOTHING.", default=False)
    conflict_key: str | None = api_field("Conflict columns, comma-separated (default: the primary key, else id).",
                                         default=None)
    upsert_strategy: str = api_field("ifNewer updates only when upsertVersionColumn grows.", default="always",
                                     enum=UPSERT_STRATEGIES)
    upsert_version_column: str | None = api_field("Version column compared by ifNewer.", default=None)
    soft_delete_column: str | None = api_field("A delete (metadata operation delete) sets this column to now() instead "
                                              "of deleting the row.", default=None)
    flatten_metadata_columns: bool = api_field("With rawMode, one column per metadata field.", default=False)
    flatten_metadata_columns_prefix: str = api_field("Prefix of the flattened metadata columns.", default="")
    connection_timeout: int | None = api_field("Seconds to wait for a connection (libpq's default when unset).",
                                               default=None, minimum=1)

    @classmethod
    def parse(cls, f: Fields) -> PostgreSQLSinkConfig:
        f.unknown_keys(allowed_keys(cls))
        f.value_or_secret("connectionString")
        f.value_or_secret("table")
        batch_size = f.integer("batchSize", minimum=0)
        interval = f.integer("batchFlushIntervalSeconds", minimum=0)
        if batch_size == 0 and interval == 0:
            f.error("batchFlushIntervalSeconds", "batchSize 0 and batchFlushIntervalSeconds 0 would never flush")
        auto_create = f.boolean("autoCreateTable")
        raw_mode = f.boolean("rawMode")
        upsert = f.boolean("upsertMode")
        conflict_key = f.string("conflictKey", non_empty=True)
        strategy = f.string("upsertStrategy", choices=UPSERT_STRATEGIES)
        version = f.string("upsertVersionColumn", non_empty=True)
        if strategy == "ifNewer" and version is None:
            f.error("upsertVersionColumn", "required when upsertStrategy is ifNewer")
        if strategy == "ifNewer" and not upsert:
            f.error("upsertStrategy", "ifNewer requires upsertMode: true")
        soft_delete = f.string("softDeleteColumn", non_empty=True)
        flatten = f.boolean("flattenMetadataColumns")
        prefix = f.string("flattenMetadataColumnsPrefix")
        if flatten and not raw_mode:
            f.error("flattenMetadataColumns", "only allowed with rawMode: true")
        return build(cls, connection_string=_text(f, "connectionString") or "", table=_text(f, "table") or "",
                     batch_size=batch_size, batch_flush_interval_seconds=interval, auto_create_table=auto_create,
                     raw_mode=raw_mode, upsert_mode=upsert, conflict_key=conflict_key, upsert_strategy=strategy,
                     upsert_version_column=version, soft_delete_column=soft_delete,
                     flatten_metadata_columns=flatten, flatten_metadata_columns_prefix=prefix,
                     connection_timeout=f.integer("connectionTimeout", minimum=1))
