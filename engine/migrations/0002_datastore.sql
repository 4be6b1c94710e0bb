-- The column-wise datastore (ReBase stage 1). Owned by engine/ingest.py and engine/datastore.py.
-- One row per dataset; `id` is also the key of its description vector in index/descriptions.usearch.
create table datasets (
    id integer primary key,
    name varchar not null unique,              -- dataset id, e.g. "nyu-mll/glue"
    source_path varchar not null,
    description varchar not null,
    description_generated boolean not null default false,
    card varchar,
    status varchar not null default 'ingesting',  -- ingesting | ready
    added_at timestamp default current_timestamp
);

-- One row per (dataset, config, split) that was ingested.
create table configs (
    id integer primary key,
    dataset integer not null,
    name varchar not null,
    split varchar not null,
    columns json,
    rows_total bigint,                         -- rows of the split at the source
    status varchar not null default 'ingesting',
    unique (dataset, name, split)
);

-- Rows as read from the source, flattened. `id` is the row key used everywhere else.
create table rows (
    id bigint primary key,
    dataset integer not null,
    config integer not null,
    row_id bigint not null,                    -- 0-based position in its config's split at the source
    data json not null
);

-- Every distinct cell text once; `id` is the key of its vector in index/values.usearch.
create table cell_values (
    id bigint primary key,
    text varchar not null,
    hash varchar not null unique
);

-- Which value each cell of each row holds.
create table cells (
    "row" bigint not null,
    "column" varchar not null,
    value bigint not null
);
