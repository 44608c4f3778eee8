"""Model operations: the drift monitor, its durable job queue, and the A/B decision that closes the loop."""
