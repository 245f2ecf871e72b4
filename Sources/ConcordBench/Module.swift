// Module ConcordBench: see DESIGN.md for its role.
