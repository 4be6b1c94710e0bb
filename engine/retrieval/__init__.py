"""The retrieval stage (ReBase stages 2-3): rank the datastore's rows for a task.

``loading`` reads the ready datasets into memory, ``scoring`` holds the pure ReBase math, ``retriever`` runs
searches (exact or approximate) returning ``results``, ``pool`` stores a ranking as a task's pool, and
``refine`` finds a refinement round's rows (near a run's validation mistakes, reusing the task's stored scores).
"""
