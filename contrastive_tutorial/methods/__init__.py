"""Per-chapter pieces that are not generic: one module per method."""
