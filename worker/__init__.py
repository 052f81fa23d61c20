"""RQ jobs, the clock that enqueues them on time, and the `qs` command line.

Jobs take ids, load state through queue_service, act and log; no business
rule lives here.
"""
