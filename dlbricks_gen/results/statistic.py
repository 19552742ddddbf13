"""Which statistic of a result the estimator reads: its own module, so that the CLI can name
the default without importing the result loader (and jsonschema) at start-up."""

STATISTICS = ("best_run", "trimmed_mean_20", "median", "mean", "min")
# The paper's statistic, every value of every worker pass (and slice) pooled, 20% trimmed at
# each end. best_run (the least disturbed pass's median) was the default while whole models
# were timed in one go each round; since `study` times them in slices spread over the run,
# the pooled trimmed mean scored better on 11 of the 12 studies of sessions 10-11 (AMD EPYC
# Zen 3; FP32 sliced 163/188 within 10% against 148/188, estimates of two runs a median
# 1.7-2.4% apart against 2.3-3.9%); of 4 studies measured after the choice it won 2, tied 1
# and lost 1 by one model (docs/ACCURACY-LOG.md, session 11).
DEFAULT_STATISTIC = "trimmed_mean_20"
