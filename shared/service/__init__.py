"""The service plumbing: settings, job store, result cache, rate limits, worker registry, queue
names, content keys and the reconciler. Never imports torch.
"""
