"""Developer tools: the mock harness, the offline plan and the benchmark."""
