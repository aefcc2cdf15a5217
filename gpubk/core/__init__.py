"""The core every op stands on: who handles an op (eager execution or graph staging)."""
