"""The student stage: train a small model on the accepted examples, follow it, evaluate it, export it.

Modules, from what a front end calls to what they rest on:

* ``launch`` — start a new run (a task's accepted examples, or a data file) or resume one: the one way both
  front ends do it;
* ``runs`` — run directories and the ``runs`` table (create, record, reconcile); ``summary`` — a run's state
  read from its files (:class:`~engine.student.summary.RunSummary`);
* ``run_config`` — the settings a run is made with and its ``run.json`` (``RunSettings``, ``RunConfig``);
  ``recipes`` — named sets of those settings (``train --recipe paper``);
* ``supervise`` — the worker process seen from the parent: start, follow, stop, notice its death;
  ``worker`` — the child process itself; ``events`` — the protocol between them (``events.jsonl``);
* ``loop`` — the training loop; ``schedule`` — learning rate, batch order, collation; ``model`` — loading the
  student, its forward pass, checkpoints and the final model;
* ``training_data`` — accepted examples, data files, splits and dataset export; ``formatting`` — the one
  prompt format of training, evaluation and export;
* ``evaluate`` — greedy generation and its scores (``EvalResult``); ``export`` — the model folder and its
  Ollama Modelfile; ``outputs`` — export paths checked before writing, and atomic writes.
"""
