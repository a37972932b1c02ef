"""`python -m redress.policy --schema > policies/policy.schema.json`: the JSON schema of
a policy file, for policy authors and their editors (`make policy-schema`)."""

import sys

from redress.policy import json_schema

if sys.argv[1:] != ["--schema"]:
    sys.exit("usage: python -m redress.policy --schema > policies/policy.schema.json")
sys.stdout.write(json_schema())
