"""Experiments: the paper's comparison run unattended — per task, the untrained student, a student trained on
data the teacher synthesized from the task alone, one trained on ReBase data, and the teacher itself — written
up as a table with confidence intervals (``rebase-tui experiment SPEC.toml``).

- ``spec``: the TOML spec, read and checked (one line per problem, naming the file);
- ``runner``: :func:`~engine.experiments.runner.run_experiment`, an async generator over every stage of every
  task, resumable after a kill;
- ``stages``: the stages it drives (retrieve, make data, train, evaluate, the teacher's answers);
- ``state``: what finished, by stage and fingerprint (``experiments/<name>/state.json``);
- ``results``: ``results.json`` / ``results.md`` and the readers front ends show them with
  (:func:`~engine.experiments.results.list_experiments`, :func:`~engine.experiments.results.load_results`).
"""
