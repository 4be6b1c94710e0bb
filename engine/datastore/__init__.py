"""The datastore stage (ReBase stage 1): local datasets stored cell by cell, every distinct text embedded once.

``sources`` finds datasets on disk (``cards`` reads their README cards, ``ids`` names them, ``splits`` tells
their splits); ``readers`` reads data files (``text_formats`` the JSON and CSV kinds, into ``tables``) and
``cells`` turns each record into cell texts; ``ingest`` runs the job: ``staging`` writes each dataset in one
transaction, ``vectorize`` embeds what lacks a vector with the embedder of ``embed`` (precision and the
OpenVINO backend in ``backends``; on a Ray cluster with ``ray_embed``), into the vector files of ``vindex``;
``provenance`` records which model, backend and precision made them and rebuilds them all. ``datasets`` lists
and removes datasets; ``health`` checks and repairs the index.
"""
