"""A real browser for agent tasks: WebArena's observation and action space over headless Chromium.

``driver`` (Playwright + system Chromium, loopback-only networking), ``observation`` (the
accessibility tree with element ids), ``actions`` (WebArena's id-based actions), ``prompt``
(WebArena's CoT prompt as a chat), ``env`` (the episode loop), ``evaluators`` (WebArena's
string/url/program_html checks) and ``server`` (static pages on loopback).
Importing this package is cheap: Playwright is imported only when a browser starts.
"""
