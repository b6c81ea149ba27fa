"""The runtime of a run: the scheduler, the node context, tasks, credentials and step records."""
