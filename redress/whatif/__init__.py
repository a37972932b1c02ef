"""`redress whatif POLICY [POLICY ...]`: the cost and coverage of candidate policies over
the current warehouse, side by side, with nothing paid (SPEC "The command line", issue 13).

figures.py: the figures of one policy, pure Polars over frames (the entitle and disburse
stages' own rules, called, never copied); evaluate.py: one read-only read of the
warehouse shared by every policy; output.py: the terminal table, whatif.json and
whatif.html. No Prefect here: nothing is scheduled, paid or recovered.
"""
