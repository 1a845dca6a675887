"""The live view (`--view`, docs/view.md): a page that draws the emulated cluster and what
its cables carry while a command runs.

drawing.py and frame.py are pure (the picture of a topology, one frame from two counter
samples); live.py is the observer an Emulation tells of each program, and server.py serves
the page (aiohttp) from static/. Only a command given --view imports live.py and server.py.
"""
