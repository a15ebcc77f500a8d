"""Who Deskbell's emails are from, and the domain of their Message-IDs (I2, I6).

Kept apart from composing and queueing so that reading the identity loads no templates.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MailIdentity", "message_id_domain"]


@dataclass(frozen=True, slots=True)
class MailIdentity:
    """Who our emails are from, and the key that signs their reply tokens (I2)."""

    from_addr: str
    from_name: str
    token_key: bytes
    default_delay_s: int
    # C1: where a customer's chat link starts (`<server.public_url>/chat/enter`), or empty
    # when the chat is off or the server's public address is not set: then no link.
    chat_entry: str = ""

    @property
    def message_id_domain(self) -> str:
        """The right-hand side of our Message-IDs: a subdomain of the From address's own, so
        mail an agent writes from that domain is never mistaken for ours (I6)."""
        return message_id_domain(self.from_addr)


def message_id_domain(from_addr: str) -> str:
    return f"deskbell.{from_addr.rpartition('@')[2] or 'localhost'}"
