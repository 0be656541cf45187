"""Defaults a user meets, each defined once (kept free of imports: the CLI's --help reads them)."""

# The run a handle without run_name, and a write command without --run, writes into: LightML
# 1.4's default. It is created by the first write that needs it.
DEFAULT_RUN = "benchmarks"

# How long after its registration (or restore) a model is safe from prune. An eval script
# registers its model first and logs the metrics when the benchmarks finish, which for a large
# model on a full suite takes hours; pruning it meanwhile makes the script's logs fail. A day
# covers an overnight run, and keeping an empty model one day longer costs one row.
PRUNE_GRACE_SECONDS = 86400.0
DEFAULT_TIMEOUT = 30.0  # seconds a writer waits for the registry's write lock before RegistryLockedError
