"""The web console for policy staff and auditors: server-rendered pages over the gRPC API.

The console is a client of the API like any hospital system: every action it takes passes the API's
authorisation with the person's own token (OpenID Connect, `login.py`), so it holds no rights of its own and
may run on another host than the service. Pages are rendered on the server (Flask, Jinja2); no script is
needed to use them."""
