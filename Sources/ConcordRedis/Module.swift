// Module ConcordRedis: see DESIGN.md for its role.
