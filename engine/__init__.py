"""rebase-tui's headless pipeline (ReBase: retrieval-based distillation), one package per stage.

The map — stage, where it lives, and the document that explains it:

====================  ======================  =================================================================
stage                 package / module        what it holds (doc)
====================  ======================  =================================================================
kernel                ``errors``, ``events``, expected failures, the event protocol, settings, the DuckDB store
                      ``config``, ``store``,  and its numbered ``migrations/``, the workspace folder and lock,
                      ``workspace``, ``rate`` throughput and ETA
1. datastore          ``datastore/``          finding datasets on disk (``sources``, ``cards``, ``ids``,
                                              ``splits``), reading files (``readers``, ``text_formats``,
                                              ``tables``, ``cells``), ``ingest`` (``staging``, ``vectorize``),
                                              the embedder (``embed``; ``backends``: precision, OpenVINO;
                                              ``ray_embed``: on a Ray cluster), vector files (``vindex``) and
                                              what made them (``provenance``), listing and removing
                                              ``datasets``, index ``health`` (docs/datastore.md)
2. task               ``tasks``               instruction + examples + contamination bans (docs/retrieval.md)
3. retrieval          ``retrieval/``          ``loading`` the datastore, pure ReBase ``scoring`` (of row
                                              ``subsets`` too), the ``retriever`` and its ``query_store``, its
                                              ``results``, the stored ``pool``, a refinement round's search
                                              (``refine``); at scale the int8 copy (``compact``), its score
                                              ``bounds`` and ``compact_search``
                                              (docs/retrieval.md)
4. teacher            ``teacher/``            the Ollama ``client``, ``hosts``, ``prompts``, ``ask`` (one example
                                              from the teacher), ``quality`` checks, ``calls`` (cache, SQL),
                                              ``transform``, its ``writer``, ``regenerate``; ``rules`` from
                                              rejections (``rule_proposals``, ``rule_checks``), ``redo`` with
                                              them, self-``consistency`` votes (docs/teacher.md)
5. review             ``review``              accept / reject / edit / undo, recorded decisions (docs/tui-transform-review-train.md)
6. student            ``student/``            training data, prompt ``formatting``, ``runs``, the training
                                              ``loop`` and its ``worker`` and ``supervise``-ion, ``evaluate``,
                                              ``metrics``, ``testsets``, model ``export`` (docs/training.md)
7. experiments        ``experiments/``        the paper's comparison (base, synthesize, rebase, teacher) run
                                              unattended and resumable, its ``spec``, ``runner``, ``stages``,
                                              ``state`` and ``results`` table (README: Reproduce the paper)
8. loop               ``loop/``               refinement rounds: a run's validation mistakes steer the next
                                              retrieval (``validation``, ``rounds``, ``refine``)
                                              (docs/training.md)
front-end helpers     ``info``, ``demo``,     what ``rebase-tui info`` reports; the demo workspace; whether a
                      ``language``            task's script suits the embedder
====================  ======================  =================================================================

Rules: this package never imports textual, rich or rebase_tui, and imports heavy libraries (torch,
transformers, sentence_transformers, peft, ray) only inside the functions that need them, so the CLI and
the app's first paint stay fast. Long operations are generators of :mod:`engine.events`; expected failures
raise :class:`engine.errors.EngineError` with a message and a fix.
"""
