"""Domain errors of the post-loan monitoring rules."""


class DomainError(ValueError):
    """A rule was given input it cannot accept; `field` names the offending input so the API can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
