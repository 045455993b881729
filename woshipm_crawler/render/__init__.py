"""JavaScript rendering: plain HTTP by default, Debian's Chromium through scrapy-playwright when a
page needs it. scrapy-playwright is used through its settings and request ``meta`` only.

chromium.py    where Debian's Chromium is, and the flags it needs here
addon.py       ``RenderAddon``: the Scrapy add-on that wires scrapy-playwright up at settings time
middleware.py  ``RenderMiddleware``: sends a JS shell or check page to the browser, once
abort.py       ``abort_request``: what the browser never fetches
"""
