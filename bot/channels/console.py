"""The terminal channel: a chat on stdin/stdout with the same engine, content and storage.

Buttons become numbered lines; typing a number presses that button (the fallback every
channel without buttons uses). It also reads piped input and stops cleanly at end of input.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from ..core.messages import Choice, Inbound, Photo, Picked, Say, Toast, UserKey
from ..core.normalize import parse_number
from ..services.dispatch import Dispatcher, Who
from .render import answered, plain


class ConsoleChannel:
    """One local user chatting through text streams."""

    def __init__(self, dispatcher: Dispatcher, stdin: TextIO, stdout: TextIO, user_ref: str = "local",
                 platform_user_id: int | None = None):
        self.dispatcher = dispatcher
        self.platform_user_id = platform_user_id  # the demo admin's id, so admin commands work here
        self.stdin = stdin
        self.stdout = stdout
        self.key = UserKey("console", user_ref)
        self.buttons: tuple[Choice, ...] = ()
        self.interactive = stdin.isatty() if hasattr(stdin, "isatty") else False

    async def run(self) -> None:
        """Chat until end of input (Ctrl-D) or /quit."""
        loop = asyncio.get_running_loop()
        self.write("Export Saathi: terminal chat. Type /quit or press Ctrl-D to leave.\n")
        await self.send(Inbound.say("/start"))
        while True:
            if self.interactive:
                self.write("> ")
            line = await loop.run_in_executor(None, self.stdin.readline)
            if not line:
                break
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.strip() in ("/quit", "/exit"):
                break
            await self.send(self.parse(line))
        self.write("\nBye! Your answers are saved; run the chat again to continue.\n")

    def parse(self, line: str) -> Inbound:
        """A typed line; a bare number presses the matching button of the last question."""
        number = parse_number(line)
        if number is not None and 1 <= number <= len(self.buttons):
            return Inbound.tap(self.buttons[number - 1].id)
        return Inbound.say(line)

    async def send(self, inbound: Inbound) -> None:
        """Hand ``inbound`` to the service and print the replies."""
        reply = await self.dispatcher.handle(Who(self.key, platform_user_id=self.platform_user_id), inbound)
        if reply is None:
            return
        for output in reply.outputs:
            self.render(output)

    def render(self, output: object) -> None:
        """Print one output."""
        if isinstance(output, Say):
            self.write("\n" + plain(output.text) + "\n")
            if output.choices:
                self.buttons = output.choices
                for index, choice in enumerate(output.choices, 1):
                    self.write(f"  [{index}] {plain(choice.label)}\n")
            elif output.ask_contact:
                self.buttons = ()
                self.write("  (type your 10-digit mobile number)\n")
            else:
                self.buttons = ()
        elif isinstance(output, Picked):
            self.write(f"  ✓ {plain(answered(output.label))}\n")
        elif isinstance(output, Toast):
            self.write(f"  ({plain(output.text)})\n")
        # A Photo is saved and its path printed by ConsoleSender.reply, which sees every stored reply
        # (a certificate is sent after the turn, not in it).

    def write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()


class ConsoleSender:
    """The terminal's outbox ``Sender``: prints lead cards and notices, naming the chat they are for."""

    def __init__(self, stdout: TextIO, images: Path | None = None):
        self.stdout = stdout
        self.images = images or Path("images")

    async def send(self, chat_ref: str, say: Say) -> str | None:
        """Print ``say`` as the chat ``chat_ref`` would see it."""
        lines = [f"\n📨 ── message for chat {chat_ref} ──", plain(say.text)]
        if say.choices:
            lines.append("  " + "  ".join(f"[{plain(c.label)}]" for c in say.choices))
        if chat_ref.startswith("staff-"):
            lines.append(f"  (answer it as that chat: saathi chat --user {chat_ref})")
        self.stdout.write("\n".join(lines) + "\n")
        self.stdout.flush()
        return None

    async def reply(self, row) -> str | None:
        """Texts of the terminal's own chat are printed by the chat as its turn ends; a picture
        (a chart, a certificate) is saved to a file, and its path printed."""
        output = row.output
        if isinstance(output, Photo):
            self.images.mkdir(parents=True, exist_ok=True)
            stem, dot, ext = output.filename.rpartition(".")
            path = self.images / f"{stem or output.filename}-{row.id}{dot}{ext if stem else 'png'}"
            path.write_bytes(output.data)
            self.stdout.write(f"\n🖼  {plain(output.caption)}\n   Saved as {path} (open it to look)\n")
            self.stdout.flush()
        return None
