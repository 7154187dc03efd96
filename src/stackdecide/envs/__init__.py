"""An environment per candidate: its stack pins resolved to a lock (``resolve``), installed into a
content-addressed virtual environment (``build``), listed and pruned (``store``), and fetched as a
wheelhouse for machines without network (``download``). uv does the resolving and installing."""
