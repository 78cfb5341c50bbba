"""The HTTP edge: routes, the write API, tokens and the web config, the /status views and page.
It reads views and calls services; it never drives the scheduler or the probes."""
