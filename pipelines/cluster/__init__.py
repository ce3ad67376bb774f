"""Running the dataflow as a cluster of processes: identity of one process, a local supervised cluster."""
