// Module ConcordTesting: see DESIGN.md for its role.
