"""Closing the loop: the student's validation mistakes steer the next retrieval (``rebase-tui refine RUN``).

- ``validation``: the validation items a round learns from (a run's hold-out, or accepted examples it never
  saw) and the run's answers to them;
- ``rounds``: the record of rounds and the rows each added (its SQL), read by front ends through
  :func:`~engine.loop.rounds.list_rounds` and :func:`~engine.loop.rounds.round_rows`;
- ``refine``: one round, step by step (failures, rows near them, the teacher, review, training, the scores
  after), resumable.

The retrieval of a round is :mod:`engine.retrieval.refine`; the reviewer's rules for the teacher and
self-consistency live with the teacher (:mod:`engine.teacher.rules`, :mod:`engine.teacher.consistency`).
"""
