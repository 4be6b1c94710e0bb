-- Workspace-wide facts: the embedder's name and dimension, the app version that created it, ...
create table meta (
    key varchar primary key,
    value varchar
);
