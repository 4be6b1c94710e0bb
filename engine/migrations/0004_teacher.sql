-- Teacher calls (cache/resume), examples and review decisions (ReBase stage 4 and review).
create sequence examples_seq start 1;
create table examples (
    id bigint primary key default nextval('examples_seq'),
    task varchar not null,
    "row" bigint,                              -- rows.id of the source row (null: imported)
    input varchar not null,
    output varchar not null,
    reasoning varchar,
    status varchar not null,                   -- pending | accepted | rejected | failed | duplicate
    reason varchar,                            -- why rejected/failed/duplicate
    teacher_model varchar,
    teacher_digest varchar,
    options json,
    prompt_hash varchar,
    call_key varchar,                          -- teacher_calls.key
    raw_response varchar,
    timings json,
    tokens json,
    edited boolean not null default false,
    created_at timestamp default current_timestamp,
    updated_at timestamp default current_timestamp
);

-- Every finished teacher call, keyed by (task, row, prompt hash, model, options): never repeated.
create table teacher_calls (
    key varchar primary key,
    task varchar not null,
    "row" bigint not null,
    model varchar not null,
    prompt_hash varchar not null,
    options json,
    response varchar,
    status varchar not null,                   -- ok | failed
    error varchar,
    created_at timestamp default current_timestamp
);

-- Append-only review decisions; undo pops the last one.
create sequence decisions_seq start 1;
create sequence decisions_batch_seq start 1;
create table decisions (
    id bigint primary key default nextval('decisions_seq'),
    task varchar not null,
    example bigint not null,
    before json not null,                      -- the example's status/fields before the decision
    after json not null,
    batch bigint not null,                     -- decisions made by one action (accept-all) share a batch; undo pops a batch
    kind varchar not null default 'status',    -- status | edit
    undone boolean not null default false,
    created_at timestamp default current_timestamp
);
