"""A PTB bot that cannot be deafened by one update it does not understand.

python-telegram-bot parses a whole ``getUpdates`` batch at once. If one update in it does not
parse (a field a newer or older Bot API server sends differently), the whole batch fails, the
offset never moves past it, and the same batch is fetched and refused again, forever: nobody
gets an answer. Here, only when that happens, the batch is fetched again raw and each update is
parsed on its own; one that still fails is replaced by a bare update with the same id, which no
handler acts on, so the offset moves on and everyone else is served.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ExtBot

log = logging.getLogger(__name__)


class TolerantBot(ExtBot):
    """``ExtBot`` whose ``get_updates`` skips updates that cannot be parsed."""

    async def get_updates(self, offset: int | None = None, limit: int | None = None, timeout: Any = None,
                          allowed_updates: Sequence[str] | None = None, **kwargs: Any) -> tuple[Update, ...]:
        try:
            return await super().get_updates(offset=offset, limit=limit, timeout=timeout,
                                             allowed_updates=allowed_updates, **kwargs)
        except TelegramError:
            raise
        except Exception:  # noqa: BLE001 - a parse failure; the raw batch is still on the server
            log.warning("an update could not be parsed; parsing the batch one update at a time")
        data: dict[str, Any] = {"timeout": 0}
        if offset is not None:
            data["offset"] = offset
        if limit is not None:
            data["limit"] = limit
        if allowed_updates is not None:
            data["allowed_updates"] = list(allowed_updates)
        raw = await self._post("getUpdates", data)
        updates = []
        for item in raw or []:
            try:
                updates.append(Update.de_json(item, self))
            except Exception:  # noqa: BLE001
                log.error("skipping update %s: it cannot be parsed", item.get("update_id"))
                updates.append(Update(update_id=int(item["update_id"])))
        for update in updates:
            self.insert_callback_data(update)
        return tuple(updates)
