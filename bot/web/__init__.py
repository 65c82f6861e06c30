"""The web dashboard for startup staff and admins (a plain page and a Telegram Mini App).

It sees the bot through ``services/dashboard.py`` only: sign-in, sessions, the staff board and
the admins' funnel; every change it makes is the chat's own service call.
"""

from .app import dashboard_app, mount, serve

__all__ = ["dashboard_app", "mount", "serve"]
