"""The teacher stage: an Ollama model rewrites the task's retrieved rows into task examples.

- ``client``: settings, host and model checks, streamed schema-constrained chat with timeouts and retries;
  ``hosts``: host strings to URLs.
- ``prompts``: the transform and filter prompts, answer schemas, label sets and :class:`PromptSpec`.
- ``quality``: parsing a reply and the duplicate checks.
- ``ask``: asking for one example (the call, the checks, the timings), shared by transform and regenerate.
- ``calls``: the cache of teacher calls and the examples they made (this stage's SQL); ``writer``: the group
  commit of concurrent calls.
- ``transform``: the whole pool, concurrently, resumable; ``regenerate``: one example asked for again.
"""
