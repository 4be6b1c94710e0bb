-- Closing the loop: self-consistency votes on examples, the reviewer's rules for the teacher, and refinement
-- rounds (the student's validation mistakes steering the next retrieval).

-- transform --samples N: how many answers were sampled for an example, and the share of them that agree with
-- its answer (null for an example made from one answer).
alter table examples add column samples integer;
alter table examples add column agreement double;
-- The prompt hash an example's call would have had without the task's accepted rules (null: made without
-- rules): a row already made with the same prompt up to the rules is not made again by a plain transform.
alter table examples add column base_hash varchar;

-- Rules proposed from the reviewer's rejection reasons. A `prompt` rule is an imperative line added to the
-- task's prompt once accepted; a `check` rule is a mechanical test every new example must pass.
create sequence rules_seq start 1;
create table rules (
    id bigint primary key default nextval('rules_seq'),
    task varchar not null,
    kind varchar not null,                     -- prompt | check
    text varchar not null,                     -- the rule as the teacher reads it, or what the check refuses
    check_name varchar,                        -- label_set | copied_row | max_chars | language (kind = check)
    param json,                                -- the check's parameter, e.g. {"max_chars": 600}
    reasons json not null,                     -- the rejection reasons the rule was made from
    examples json not null,                    -- the ids of the rejected examples behind those reasons
    status varchar not null,                   -- proposed | accepted | dropped
    edited boolean not null default false,
    accepted_at timestamp,                     -- when it entered the prompt or the checks
    created_at timestamp default current_timestamp,
    updated_at timestamp default current_timestamp
);

-- Refinement rounds: the validation items a run got wrong became extra retrieval queries.
create sequence rounds_seq start 1;
create table rounds (
    id bigint primary key default nextval('rounds_seq'),
    task varchar not null,
    number integer not null,                   -- 1, 2, ... per task
    run varchar not null,                      -- the run whose validation mistakes drove the round
    validation_kind varchar not null,          -- split (the run's hold-out) | carved (accepted examples it never saw)
    validation json not null,                  -- the validation items [{"input", "output"}]
    failures json not null,                    -- the items it got wrong [{"input", "references", "prediction"}]
    metrics_before json not null,              -- the run's scores on the validation items
    rows_added integer not null default 0,
    retrieval json,                            -- how the rows were found: method, seconds, rows re-scored
    status varchar not null,                   -- review | training | done
    fresh boolean,                             -- the next run started from the base student, not from `run`
    next_run varchar,                          -- the run trained on everything accepted after the round
    metrics_after json,                        -- next_run's scores on the same validation items
    created_at timestamp default current_timestamp,
    updated_at timestamp default current_timestamp
);

-- The rows a round added to its task's pool, each with the failure it is closest to.
create table round_rows (
    round bigint not null,                     -- rounds.id
    "row" bigint not null,                     -- rows.id
    rank integer not null,                     -- 1-based, by the round's score
    score double not null,
    input_score double not null,
    output_score double not null,
    dataset_score double not null,
    failure integer not null,                  -- position in rounds.failures of the closest failure
    closeness double not null,                 -- cosine of that failure's input with the row's closest cell
    primary key (round, "row")
);
