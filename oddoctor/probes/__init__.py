"""Probes: the I/O that fills a :class:`~oddoctor.snapshot.Snapshot`. Every probe may fail; none raises."""
