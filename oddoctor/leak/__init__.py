"""TF-free core of ``oddoctor leak-test``: trend statistics, child runner, verdicts, report, plot.

Nothing here imports TensorFlow; the measured inference loops run in a child process
(``oddoctor_legacy_tf1.leakrun``). ``oddoctor.leak.stats.trend`` is the verdict used everywhere.
"""
