"""The retrieval stage (ReBase stages 2-3): rank the datastore's rows for a task.

``loading`` reads the ready datasets into memory, ``scoring`` holds the pure ReBase math (``subsets``: the
same scores for a few rows read from disk), ``retriever`` runs searches (exact or approximate) returning
``results``, and ``pool`` stores a ranking as a task's pool. Large datastores keep an int8 copy of the value
vectors (``compact``) whose scan ``bounds`` every row's score; ``compact_search`` re-scores in float32 only the
rows that can still reach the top, returning the exact ranking. ``refine`` finds a refinement round's rows (near a
run's validation mistakes, reusing the task's stored scores).
"""
