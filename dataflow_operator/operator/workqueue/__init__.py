"""A client-go style work queue: layers that each wrap an interface, as ``k8s.io/client-go/util/workqueue``.

- :mod:`.queue` - :class:`~.queue.Queue`: FIFO of keys with a *dirty* set (an item queued twice is
  queued once) and a *processing* set (an item handed to a worker is not handed to another until
  ``done``; adds in between are remembered and the item is queued again on ``done``).
- :mod:`.delaying` - :class:`~.delaying.DelayingQueue` wraps an :class:`~.queue.Interface` and adds
  ``add_after``: a heap of (ready time, item) and one thread that waits until the earliest is due.
- :mod:`.rate_limiting` - :class:`~.rate_limiting.RateLimitingQueue` wraps a
  :class:`~.delaying.DelayingInterface` and adds ``add_rate_limited`` / ``forget``,
  asking a :mod:`.rate_limiters` limiter *how long*.
- :mod:`.metrics` - client-go's seven ``workqueue_*`` families, labelled by queue ``name``; the base
  queue reports adds, hand-outs and completions, the delaying layer reports retries.
"""
