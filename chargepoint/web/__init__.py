"""The operator's web page (`chargepoint web`) and the driver's verifier page.

A process of its own beside the daemon: it reads the store read-only and talks to the daemon
only through the control interface, so it needs neither the serial port nor the meters, and
nothing that goes wrong in it can stop a charging session.

- `settings`: where it listens and who may use it (the `web:` section, checked at start);
- `auth`: the operator password (scrypt), login sessions, CSRF tokens, login rate limit;
- `feed`: the daemon's status, polled over the control interface and pushed to the pages;
- `marks`: each session's lock mark, checked against the key pinned for its meter then;
- `downloads`: S.A.F.E. XML, Chargy JSON and CSV streamed from the store;
- `app`: the aiohttp application (routes, templates, security headers, Host check);
- `server`: running it (TLS, shutdown);
- `verifier`: the self-contained verify.html a driver opens offline.
"""
