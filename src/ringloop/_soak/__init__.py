"""The soak: a ringloop server under full load and injected faults, checked end to end.

    python -m ringloop soak [--short] [--minutes N] [--backend io_uring|epoll]

* frames: the checksummed message format the load generator and every fault speak;
* endpoints: what the server serves (streams, Protocol, TLS, UDP);
* server: the serving process (its own process, so its fds and RSS can be watched),
  with the faults that happen inside it (chaos);
* faults: the faults a misbehaving client injects;
* driver: one backend's run (server, compiled load generator, fault schedule,
  samples, watchdog) and its verdict; cli: the command and its report.
"""
