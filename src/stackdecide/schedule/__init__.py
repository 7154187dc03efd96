"""Running several candidates' launch-and-benchmark at once: on disjoint GPU sets of one host
(``local``) or as Ray tasks on a cluster (``ray_backend``), behind one ``Scheduler`` interface
(``base``); ``placement`` decides which GPUs each gets, ``tournament`` measures a set of
candidates that way and re-measures the top contenders alone before naming a winner.
"""
