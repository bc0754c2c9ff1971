"""Codec errors.

Two failure classes matter to the service layer: a document we cannot even attribute to a
message type (``MalformedXml``: answer with a generic HTTP error) and a recognised message
whose content breaks the schema (``SchemaInvalid``: answer with the matching response
type and code 454, echoing ``request_id``).
"""

from __future__ import annotations


class CodecError(Exception):
    """Base class of every error raised by ``vtn.codec``."""


class MalformedXml(CodecError):
    """Not an OpenADR document: not well-formed, has a DTD, invalid UTF-8, wrong root,
    no oadrSignedObject, or an unknown message element."""


class SchemaInvalid(CodecError):
    """A recognised OpenADR message whose content violates the 2.0b schema."""

    def __init__(
        self,
        message_name: str,
        detail: str,
        *,
        request_id: str | None = "",
        ven_id: str | None = None,
    ) -> None:
        self.message_name = message_name
        self.detail = detail
        self.request_id = request_id
        self.ven_id = ven_id
        super().__init__(f"{message_name}: {detail}")
