"""Leader-only services of the workers (rescue, retention, queue gauges) and the one
leader election that they and the scheduler use."""
