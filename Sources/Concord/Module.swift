// Module Concord: see DESIGN.md for its role.
