-- Tasks (instruction + examples) and their retrieval pools (ReBase stages 2-3).
create table tasks (
    name varchar primary key,
    spec json not null,                        -- {"name","instruction","examples","source_datasets_to_exclude"}
    prompt_template varchar,                   -- the teacher prompt template (null: the default)
    created_at timestamp default current_timestamp,
    updated_at timestamp default current_timestamp
);

-- A task's pool: the ranked rows the teacher will transform.
create table retrievals (
    task varchar not null,
    rank integer not null,                     -- 1-based
    "row" bigint not null,                     -- rows.id
    score double not null,
    input_score double not null,
    output_score double not null,
    dataset_score double not null,
    input_column varchar,
    output_column varchar,
    primary key (task, rank)
);

-- Query embeddings (instruction, example inputs, example output targets) cached between calls, so that an
-- unchanged task re-ranks without loading the embedding model. Owned by engine/retrieve.py.
create table query_vectors (
    embedder varchar not null,                 -- the workspace's embedder name
    text_hash varchar not null,                -- sha256 of the UTF-8 text
    vector blob not null,                      -- float32 little-endian, L2-normalised
    added_at timestamp default current_timestamp,  -- the oldest go first beyond QUERY_TABLE_MAX rows
    primary key (embedder, text_hash)
);
