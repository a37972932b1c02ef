"""The disburse stage's two endings, shared with `redress approve`: keeping a checked plan
for approval (plan), and releasing payments into the ledger and the outbox in the
crash-safe order (release)."""
