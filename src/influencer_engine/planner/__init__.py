"""The planner: rosters for a goal and a budget under constraints, unique reach, budget what-ifs."""
