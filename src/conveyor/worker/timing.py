"""Timings shared by the worker's consumer and the process pool's children, which claim
the same way: one place to change them."""

#: In burst mode, delayed jobs due within this many seconds are waited for.
BURST_HORIZON = 60.0
#: Longest an idle claimer waits before claiming again (delayed jobs start this late at most).
IDLE_WAIT = 0.5
#: Pause after a backend error before trying again.
ERROR_BACKOFF = 1.0
#: Group commit: after a job's outcome, how long its acknowledgement may wait for the
#: outcomes of other jobs still running, to store them all in one call (docs/worker.md).
ACK_WINDOW = 0.001
#: A process-pool child's form of it: an outcome of a batch still running waits up to
#: this long (a batch is sized to about this much work, ``pools/child.py``), to be stored
#: with the batch's last outcomes and the next claim in one call; one of an idle worker
#: (a batch of one) does not wait at all.
BATCH_ACK_WINDOW = 0.02
