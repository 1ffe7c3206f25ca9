"""Online payment of contract milestones, deposits and refunds through Stripe."""
