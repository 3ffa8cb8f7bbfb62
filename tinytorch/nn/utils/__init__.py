"""(placeholder: filled by the nn work)."""
