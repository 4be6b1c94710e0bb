"""The teacher stage: a model served by Ollama or an OpenAI-compatible server rewrites the task's retrieved
rows into task examples.

- ``client``: settings (checked), model listing and checks, and one chat call with retries, a deadline and a
  circuit breaker; ``hosts``: host strings to URLs.
- ``backend``: the small interface every server implements (one streamed attempt, the model list), with the
  capped line reader; ``ollama_backend`` and ``openai_backend``: the two implementations.
- ``prompts``: the transform, synthesis and filter prompts, answer schemas, label sets and :class:`PromptSpec`
  (the wording and method choices); ``paper_prompt``: the released ReBase prompt, rendered as the paper did.
- ``quality``: parsing a reply and the duplicate checks.
- ``ask``: asking for one example (the call, the checks, the timings), shared by transform and regenerate.
- ``calls``: the cache of teacher calls and the examples they made (this stage's SQL); ``writer``: the group
  commit of concurrent calls.
- ``plan``: a run's items (pool rows or synthesis slots) with their cache keys; ``transform``: the whole pool
  (or N synthesized examples), concurrently, resumable; ``regenerate``: one example asked for again.
- ``rules``: rules for the teacher made from rejection reasons (their SQL, rates before and after);
  ``rule_proposals``: grouping the reasons and asking the teacher; ``rule_checks``: the mechanical checks;
  ``redo``: pending examples made again with the rules; ``consistency``: ``transform --samples N`` votes.
"""
