"""What a channel's sender raises when its service does not take a message."""

from __future__ import annotations


class DeliveryError(Exception):
    """The channel's service did not accept the message (after the sender's quick retries).

    `final`: trying again will not help (a 4xx such as an invalid number, a blocked bot, no
    template outside the WhatsApp window); otherwise bot/delivery/queue.py tries again later.
    `delivered`: how many of the messages handed to `send` went out before this one failed.
    """

    def __init__(self, message: str, *, final: bool = False, delivered: int = 0) -> None:
        super().__init__(message)
        self.final = final
        self.delivered = delivered
