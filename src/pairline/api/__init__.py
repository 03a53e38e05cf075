"""The ASGI application: HTTP routes, the runtime's lifecycle, and the server that runs it."""
