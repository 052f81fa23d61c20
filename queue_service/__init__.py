"""The domain of the fair-allocation queue: plain Python and the Redis store.

Nothing here imports Flask or RQ: time, randomness and the acting user are
passed in, so every rule runs the same in a request, a job, a test and a replay.
"""
