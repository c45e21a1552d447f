"""A request the explorer refuses, with the status code and a message that says what to change."""


class BadRequest(Exception):
    """400 by default; 404 unknown model, 409 not ready, 413 too large, 422 out of range or unsupported."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status
