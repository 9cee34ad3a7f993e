"""maasops benchmarks: scripts, not tests. Each prints a table and ratios against a baseline run in the same go."""
