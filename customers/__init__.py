"""Customer 360: identity resolution with reversible merges, scores with their reasons, RFM and lifetime value."""
