"""(placeholder: filled by the nn work)."""

__all__: list[str] = []
