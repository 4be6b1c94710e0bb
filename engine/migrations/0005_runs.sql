-- Training runs and their summaries (ReBase stages 5-6). The run directory holds the details.
create table runs (
    id varchar primary key,                    -- runs/<id>/
    task varchar,
    student varchar not null,
    status varchar not null,                   -- running | finished | failed | stopped
    config json,
    summary json,                              -- steps, train_loss, eval_loss, seconds, metrics
    created_at timestamp default current_timestamp,
    finished_at timestamp
);
