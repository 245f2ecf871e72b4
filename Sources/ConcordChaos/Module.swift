// Module ConcordChaos: see DESIGN.md for its role.
